"""corekit for Django projects: add ``"corekit.contrib.django"`` to
``INSTALLED_APPS`` (``pip install 'corekit[django]'``).

- ``python manage.py corekit worker -l info`` runs any corekit command
  with the project's settings and app (`management.commands.corekit`);
- ``app.autodiscover_tasks()`` finds the ``tasks`` module of every
  installed app (`plugin`, the ``corekit_task_packages`` hook).

Nothing here imports Django until Django is in use.
"""
