"""The one exception type that means "the user gave us something we cannot use".

The CLI turns it into a single line on stderr and exit code 2; anything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names the problem and the fix, on one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
