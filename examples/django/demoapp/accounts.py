"""Signing a user up: the welcome task is sent once the user's row is committed."""
from django.contrib.auth.models import User
from django.db import transaction

from demoapp.tasks import welcome


def sign_up(name):
    with transaction.atomic():
        user = User.objects.create(username=name)
        welcome.delay_on_commit(user.pk)  # sent after the commit, never on rollback
    return user
