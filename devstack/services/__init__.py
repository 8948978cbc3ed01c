"""One module per service (or family of alike services): everything devstack knows about it.

devstack.catalog lists them; see the README's "Adding a service".
"""
