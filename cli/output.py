"""What the commands print besides their errors: result lines and rich progress bars."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager


def echo(lines) -> None:
    for line in lines:
        print(line)


@contextmanager
def progress_bar(description: str):
    """A rich progress bar as the library's one progress shape, `progress(done, total, note="")`
    (`note`: what is running, shown beside the description). The bar appears at the first call,
    which the library makes once its inputs are valid, so a one-line error is never preceded by
    a bar; it is closed when the block ends."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task(description, total=None)
    with ExitStack() as stack:
        def update(done: int, total: int, note: str = "") -> None:
            if not bar.live.is_started:
                stack.enter_context(bar)
            bar.update(task, completed=done, total=total, description=f"{description} ({note})" if note else description)

        yield update
