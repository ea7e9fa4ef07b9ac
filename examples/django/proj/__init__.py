# The corekit app is made when Django starts, so @shared_task uses it.
from .corekit import app as corekit_app

__all__ = ("corekit_app",)
