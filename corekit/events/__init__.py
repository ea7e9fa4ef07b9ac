"""Task and worker events: sending them, receiving them, and the cluster state built from them."""
