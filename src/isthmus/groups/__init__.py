"""Globus Groups v2: groups, memberships and their policies."""
