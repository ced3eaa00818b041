"""Periodic imports into the directory: LDAP/Active Directory and calendars.

The third-party clients (ldap3, caldav, icalendar) are imported only inside
these modules, when a sync runs.
"""
