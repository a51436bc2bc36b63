"""A minimal Django project serving django-oauth-toolkit, for the throughput benchmark."""
