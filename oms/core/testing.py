"""Helpers for the test suites of every app (no test runs from here)."""

import threading

from django.db import connection


def run_together(count: int, work) -> list:
    """Run work(i) in `count` threads released at once by a barrier, each on its own database
    connection (closed at the end). Returns each thread's result or the exception it raised."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results
