"""The health of TensorFlow's persistent compilation cache, checked before TensorFlow reads
it: a damaged entry would fail every run of its network with a traceback, and a write onto
a full disk fails the run that compiles. Imports no TensorFlow.

An entry is ``<prefix>__<signature>__<cluster>__<device>.pb``, a serialized
``XlaSerializedCacheEntry`` (``tensorflow/compiler/jit/xla_compilation_cache.proto``): its
key (field 1: the two fingerprints of its name, field 3 its device), the lowered HLO
module (2) and the executable (3). TensorFlow writes one to a ``.tmp`` file first and
renames it into place.
"""
import glob
import os
import shutil
import tempfile
import time

from .cli import warn

# Below this much free space a compiled executable (a few MB, more for large networks)
# may not fit: the cache is then read but not written.
FREE_SPACE_NEEDED = 256 * 2 ** 20
# A .tmp file this old is no write in progress but one that a crash or a full disk left.
STALE_SECONDS = 3600
DAMAGED = '.damaged'


def _entry_type():
    """The message class of a cache entry, built from the fields this module reads."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name='wavenet_xla_cache_entry.proto',
                                               package='wavenet_cache', syntax='proto3')
    key = proto.message_type.add(name='Key')
    for number, name, kind in ((1, 'signature_fingerprint', field.TYPE_UINT64),
                               (2, 'cluster_fingerprint', field.TYPE_UINT64),
                               (3, 'device_type', field.TYPE_STRING),
                               (4, 'prefix', field.TYPE_STRING),
                               (5, 'compiled_using_pjrt', field.TYPE_BOOL)):
        key.field.add(name=name, number=number, type=kind, label=field.LABEL_OPTIONAL)
    entry = proto.message_type.add(name='Entry')
    entry.field.add(name='key', number=1, type=field.TYPE_MESSAGE,
                    type_name='.wavenet_cache.Key', label=field.LABEL_OPTIONAL)
    # The HLO module is a message of its own; its bytes are enough to know it is whole.
    for number, name in ((2, 'hlo_module'), (3, 'executable')):
        entry.field.add(name=name, number=number, type=field.TYPE_BYTES,
                        label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName('wavenet_cache.Entry'))


def problem(path):
    """Why the cache entry at ``path`` cannot be what its name says, or None."""
    from google.protobuf.message import DecodeError
    name = os.path.basename(path)[:-len('.pb')].split('__')
    if len(name) < 4 or not (name[-3].isdigit() and name[-2].isdigit()):
        return None  # not named as TensorFlow names an entry: not ours to judge
    signature, cluster, device = int(name[-3]), int(name[-2]), name[-1]
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        return f'it cannot be read ({e.strerror})'
    if not data:
        return 'it is empty'
    entry = _entry_type()()
    try:
        entry.ParseFromString(data)
    except DecodeError:
        return 'it is not a whole cache entry (cut short, or other bytes)'
    if (entry.key.signature_fingerprint, entry.key.cluster_fingerprint,
            entry.key.device_type) != (signature, cluster, device):
        return 'its key does not match its name'
    if not entry.hlo_module or not entry.executable:
        return 'it is not a whole cache entry (cut short, or other bytes)'
    return None


def put_aside_damaged(folder):
    """Renames every damaged entry of ``folder`` to ``<name>.damaged`` (TensorFlow reads
    only ``.pb`` files), with a warning naming it, so that the loop compiles again and
    the next run is healthy; removes ``.tmp`` files left by a write that never ended.
    False when a damaged entry could not be put aside (TensorFlow must not read there)."""
    if not folder or not os.path.isdir(folder):
        return True
    healthy = True
    for path in sorted(glob.glob(os.path.join(folder, '*.pb'))):
        reason = problem(path)
        if reason is None:
            continue
        try:
            os.replace(path, path + DAMAGED)
            warn(f'compilation cache entry {path} was put aside as {os.path.basename(path)}'
                 f'{DAMAGED}: {reason}; it is compiled again')
        except OSError as e:
            healthy = False
            warn(f'compilation cache entry {path} is damaged ({reason}) and cannot be put '
                 f'aside ({e.strerror}); the cache is not used: delete the entry')
    for path in glob.glob(os.path.join(folder, '*.tmp')):
        try:
            if time.time() - os.path.getmtime(path) > STALE_SECONDS:
                os.remove(path)
        except OSError:
            pass
    return healthy


def unwritable(folder):
    """Why a compiled executable could not be written into ``folder`` now, or None."""
    try:
        free = shutil.disk_usage(folder).free
        with tempfile.NamedTemporaryFile(dir=folder, suffix='.probe'):
            pass
    except OSError as e:
        return f'it cannot be written ({e.strerror})'
    if free < FREE_SPACE_NEEDED:
        return f'its disk has only {free / 2 ** 20:.0f} MB free'
    return None
