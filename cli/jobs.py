"""The job layer's options (`runio.jobs.JobOptions`), shared by the commands that run jobs."""

from __future__ import annotations

from runio.jobs import JobOptions
from runio.options import with_fields


def with_job_options(*, skip: tuple[str, ...] = ()):
    """The job layer's options (`JobOptions`' fields but `skip`; default None, so the COOP_*
    environment applies), handed to the command as one dict `job`."""
    return with_fields(JobOptions, "job", skip=skip, default=None)
