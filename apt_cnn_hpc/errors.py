"""One exception type for every user-facing failure, so the CLI can print one line and exit 2."""


class InputError(Exception):
    """A problem with a file or a setting that the user can fix; `path` names the culprit."""

    def __init__(self, path, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
