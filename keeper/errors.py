"""Bad input ends in one clear line and exit code 2, never a traceback."""


class UserError(Exception):
    """A problem the user can fix: bad flags, parameters, files or archives."""

    exit_code = 2
