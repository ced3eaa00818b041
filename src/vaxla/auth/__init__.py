"""People who sign in: users and roles (RBAC), passwords, sessions, CSRF, audit.

API tokens live in ``vaxla.api.tokens``; both end up as a
:class:`vaxla.api.auth.Principal`.
"""
