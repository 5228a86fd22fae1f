"""One writer per logdir: a training (or a conversion) holds an OS lock on a file in its
logdir for as long as it runs, as git holds ``index.lock``.

Two trainings in one logdir would save under one step numbering, each replacing the
other's checkpoint of the same step, and both write events there. The lock is
``fcntl.flock`` on ``LOCK_FILE``, which the kernel releases when its process ends however
it ends, so a crashed or killed training never leaves the folder locked; the file holds
the holder's pid, host and start, for the refusal of the next one. Readers (generate.py,
TensorBoard) take no lock. Imports no TensorFlow.
"""
import errno
import json
import os
import socket

from .cli import warn

try:
    import fcntl
except ImportError:  # not a POSIX system: no flock
    fcntl = None

LOCK_FILE = 'training.lock'
# What a file system without locks answers (NFS without its lock service, some FUSE
# mounts).
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


class LogdirHeld(ValueError):
    """Another process holds the logdir."""


class LogdirLock:
    """The hold of this process on ``logdir`` (``acquire``, ``release``); ``started`` is
    when the holder started, as the refusal of another one says it."""

    def __init__(self, logdir, started, flag='--logdir'):
        self.logdir, self.started, self.flag = logdir, started, flag
        self.path = os.path.join(logdir, LOCK_FILE)
        self._file = None
        self._created = None  # the outermost folder acquire created, if any

    def acquire(self):
        """Takes the lock (creating the logdir if need be), or raises ``LogdirHeld``
        naming the holder. On a file system without locks, one warning and no lock."""
        folder = os.path.abspath(self.logdir)
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            self._created, folder = folder, os.path.dirname(folder)
        os.makedirs(self.logdir, exist_ok=True)
        lock_file = open(self.path, 'a+')
        try:
            if fcntl is None:
                raise OSError(errno.ENOSYS, 'no file locks on this system')
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = _holder(lock_file.read())
            lock_file.close()
            raise LogdirHeld(f'{self.flag} {self.logdir} is held by another training '
                             f'({holder}); wait for it to end, or stop it') from None
        except OSError as e:
            if e.errno not in _NO_LOCKS:
                lock_file.close()
                raise
            warn(f'{self.logdir}: its file system cannot lock files ({e.strerror}), so a '
                 'second training there would not be stopped')
        lock_file.seek(0)
        lock_file.truncate()
        json.dump({'pid': os.getpid(), 'host': socket.gethostname(),
                   'started': self.started}, lock_file)
        lock_file.flush()
        self._file = lock_file
        return self

    def release(self):
        """Lets the logdir go, and with it a logdir that ``acquire`` created where nothing
        else was written (a check failed before any work). The file stays otherwise:
        removing it could let a process that opened it just before take a lock that no
        later process sees."""
        if self._file is None:
            return
        self._file.truncate(0)
        self._file.close()  # which releases the lock
        self._file = None
        if self._created and os.listdir(self.logdir) == [LOCK_FILE]:
            os.remove(self.path)
            folder = os.path.abspath(self.logdir)
            while not os.listdir(folder):
                os.rmdir(folder)
                if folder == self._created:
                    break
                folder = os.path.dirname(folder)


def _holder(text):
    """The holder's pid, host and start, as the lock file has them."""
    try:
        holder = json.loads(text)
        return f'pid {holder["pid"]} on {holder["host"]}, started {holder["started"]}'
    except (ValueError, KeyError, TypeError):
        return 'which has not written its pid yet'
