"""What the commands print besides their errors: result lines and rich progress bars."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager


def echo(lines) -> None:
    for line in lines:
        print(line)


def progress_bar(description: str):
    """A rich progress bar as a `progress(done, total)` callback, and its context manager."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task(description, total=None)

    def update(done, total):
        bar.update(task, completed=done, total=total)

    return bar, update


@contextmanager
def counter(description: str):
    """A progress bar over items, shown from `start(total)` on (the library calls it once the inputs
    are valid); `start` returns the callback to call once per item."""
    bar, update = progress_bar(description)
    done = [0]
    with ExitStack() as stack:
        def start(total):
            stack.enter_context(bar)
            update(0, total)

            def tick():
                done[0] += 1
                update(done[0], total)

            return tick

        yield start
