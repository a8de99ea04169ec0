"""Small helpers for the pipelines' task groups."""

from __future__ import annotations

__all__ = ("first_error",)


def first_error(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real failure in a (nested) exception group.

    Callers of the pipelines handle ApiError, UploadError and IntegrityError, not groups; the
    other tasks were cancelled because of this one.
    """
    error: BaseException = errors
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
