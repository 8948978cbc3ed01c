"""One ComponentResource per concept; type tokens are devstack:<module>:<Name>."""
