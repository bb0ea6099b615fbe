"""Celery entry points: the app, its beat schedule and thin tasks that call drip.services."""
