"""Accounts: registration, email confirmation, pre-login, sign-in and sessions (ZK-1)."""
