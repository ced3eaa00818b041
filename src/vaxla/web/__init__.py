"""Växla's web face: sign-in, operator console, self-service and administration.

Jinja2 templates and hand-written ES modules (``static/``), no build step.
"""
