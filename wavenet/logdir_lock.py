"""One writer per logdir: a training (or a conversion) holds an OS lock on a file in its
logdir for as long as it runs, as git holds ``index.lock``.

Two trainings in one logdir would save under one step numbering, each replacing the
other's checkpoint of the same step, and both write events there. The lock is
``fcntl.flock`` on ``LOCK_FILE``, which the kernel releases when its process ends however
it ends, so a crashed or killed training never leaves the folder locked; the file holds
the holder's pid, host and start, for the refusal of the next one, and is removed as its
holder ends. Readers (generate.py, TensorBoard) take no lock. Imports no TensorFlow.
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
        while True:
            lock_file = open(self.path, 'a+')
            if not self._lock(lock_file) or _same_file(lock_file, self.path):
                break
            # Its holder removed the file between our open and our lock: the lock we
            # hold is on a file nobody else will open. Lock the path's file instead.
            lock_file.close()
        self._file = lock_file
        try:
            lock_file.seek(0)
            lock_file.truncate()
            json.dump({'pid': os.getpid(), 'host': socket.gethostname(),
                       'started': self.started}, lock_file)
            lock_file.flush()
        except OSError:  # a full disk: leave nothing behind
            self.release()
            raise
        return self

    def _lock(self, lock_file):
        """Locks ``lock_file``: True, or False on a file system without locks (warned
        once), or raises ``LogdirHeld`` naming the holder."""
        try:
            if fcntl is None:
                raise OSError(errno.ENOSYS, 'no file locks on this system')
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
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
            return False

    def release(self):
        """Removes the lock file and lets the logdir go, and with it a logdir that
        ``acquire`` created where nothing else was written (a check failed before any
        work). Removed while still locked, so that a process which opened it just before
        finds, once it has the lock, that the path no longer names its file, and
        retries (``acquire``)."""
        if self._file is None:
            return
        if _same_file(self._file, self.path):
            os.remove(self.path)
        self._file.close()  # which releases the lock
        self._file = None
        if self._created and not os.listdir(self.logdir):
            folder = os.path.abspath(self.logdir)
            while not os.listdir(folder):
                os.rmdir(folder)
                if folder == self._created:
                    break
                folder = os.path.dirname(folder)


def _same_file(opened, path):
    """Whether ``path`` still names the file ``opened`` is."""
    try:
        return os.path.samestat(os.fstat(opened.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(text):
    """The holder's pid, host and start, as the lock file has them."""
    try:
        holder = json.loads(text)
        return f'pid {holder["pid"]} on {holder["host"]}, started {holder["started"]}'
    except (ValueError, KeyError, TypeError):
        return 'which has not written its pid yet'
