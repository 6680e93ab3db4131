"""openSMILE's windowed functionals of audio that arrives in pieces, computed as it arrives.

The same openSMILE configuration as the batch path (:func:`~recola_pipeline.extractors.opensmile_windows.config_file`,
without its HTK files, with ring buffers in place of growing ones) runs in a thread of its own, reading the audio pushed to its external
source; external-sink callbacks hand over each LLD frame and each window's openSMILE
functionals as openSMILE writes them. openSMILE's dataflow does not depend on how its input
arrives, so the rows are bit-identical to a batch run's on the whole signal, whatever the chunk
sizes (tested). The functionals computed in numpy from LLDs (means, coefficients of variation,
percentiles: :meth:`~recola_pipeline.extractors.opensmile_windows.OpenSmileSet.window_rows`) are
then computed for each completed window from the LLD frames it covers; only the frames that
later windows still need are kept, so memory does not grow with the stream.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
from opensmile.core.lib import OpenSMILE

from ..window import Window
from .opensmile_windows import CONFIG_ROOT, HOP_S, OpenSmileSet, config_file, lld_inputs

#: seconds to wait before writing again when openSMILE's input buffer is full
WRITE_RETRY_S = 0.001
#: samples written to openSMILE at a time: well within its input ring buffer (opensmile_windows.LIVE_SOURCE)
WRITE_SAMPLES = 8000
#: the frame period of the LLD levels the numpy functionals read (openSMILE's 10 ms frames; the batch
#: path reads it from its HTK files, and a test checks the two agree)
LLD_PERIOD_S = 0.01
#: LLD frames per 40 ms window step
LLD_STEP = int(round(HOP_S / LLD_PERIOD_S))


class LiveFunctionals:
    """A feature set's functionals over W-second windows (40 ms step) of a stream of 16-bit audio.

    Parameters
    ----------
    feature_set : OpenSmileSet
    sample_rate : int
    windows : sequence of Window

    Examples
    --------
    >>> live = LiveFunctionals(EGEMAPS, 16000, [Window(4)])    # doctest: +SKIP
    >>> live.push(pcm_block)                                     # doctest: +SKIP
    >>> first, rows = live.completed()[Window(4)]                # doctest: +SKIP
    """

    def __init__(self, feature_set: OpenSmileSet, sample_rate: int, windows):
        self.feature_set = feature_set
        self.sample_rate = int(sample_rate)
        self.windows = tuple(windows)
        self.levels = lld_inputs(feature_set.name)
        self.samples = 0
        self._window_rows = [[] for _ in self.windows]  # openSMILE's per-window rows, appended by its thread
        self._lld_rows = {level: [] for level in self.levels}
        self._lld_names: dict[str, list] = {}
        self._window_names: list[list] = []
        self._done = [0 for _ in self.windows]  # windows handed out, per W
        self._window_offset = [0 for _ in self.windows]  # window rows dropped from the front, per W
        self._lld_offset = 0  # LLD frames dropped from the front (all levels share the 10 ms frame grid)
        self._finished = False
        self._failure: BaseException | None = None
        self._smile = OpenSMILE()
        self._smile.initialize(
            config_file=config_file(feature_set.name, tuple(w.seconds for w in self.windows), files=False),
            options={"sampleRate": self.sample_rate, "nBits": 16,
                     "bufferModeRbConf": os.path.join(CONFIG_ROOT, "shared", "BufferModeRb.conf.inc"),
                     # ring buffers everywhere (the batch run's growing ones would hold the whole stream); openSMILE
                     # sizes each ring for its readers, e.g. a functional's W-second window
                     "bufferModeConf": os.path.join(CONFIG_ROOT, "shared", "BufferModeRb.conf.inc")},
            loglevel=1, log_file="", debug=False)
        for i, rows in enumerate(self._window_rows):
            self._smile.external_sink_set_callback(f"funcnames_w{i}", _appender(rows))
        for j, level in enumerate(self.levels):
            self._smile.external_sink_set_callback(f"lldnames_{j}", _appender(self._lld_rows[level]))
        self._thread = threading.Thread(target=self._run, name="opensmile-live", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._smile.run()
        except BaseException as exc:  # handed to the caller by the next push or finish
            self._failure = exc

    def push(self, pcm: np.ndarray) -> None:
        """Hand openSMILE more audio: 16-bit samples (int16), mono, at the stream's rate."""
        if self._finished:
            raise RuntimeError("the stream is finished; start a new one")
        self._check()
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        for start in range(0, len(pcm), WRITE_SAMPLES):  # each write fits in openSMILE's ring buffer
            data = pcm[start:start + WRITE_SAMPLES].tobytes()
            while not self._smile.external_audio_source_write_data("extsource", data):
                self._check()
                time.sleep(WRITE_RETRY_S)  # openSMILE's input buffer is full: its thread is catching up
        self.samples += len(pcm)

    def finish(self) -> None:
        """End of input: openSMILE processes what is left and stops."""
        if not self._finished:
            self._finished = True
            self._smile.external_audio_source_set_eoi("extsource")
            self._thread.join()
            self._check()

    def close(self) -> None:
        """Stop openSMILE (whatever is left unprocessed is dropped) and free it."""
        if self._smile is None:
            return
        if self._thread.is_alive():
            if not self._finished:
                self._finished = True
                self._smile.external_audio_source_set_eoi("extsource")
            self._thread.join()
        self._smile.free()
        self._smile = None

    def _check(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"openSMILE stopped: {self._failure}") from self._failure

    def _names(self) -> None:
        """Field names of the sinks (known once openSMILE has configured its components)."""
        if not self._window_names:
            sink = self._smile.external_sink_get_element_name
            count = self._smile.external_sink_get_num_elements
            self._window_names = [[sink(f"funcnames_w{i}", k) for k in range(count(f"funcnames_w{i}"))]
                                  for i in range(len(self.windows))]
            for j, level in enumerate(self.levels):
                self._lld_names[level] = [sink(f"lldnames_{j}", k) for k in range(count(f"lldnames_{j}"))]

    def completed(self) -> dict[Window, tuple[int, np.ndarray]]:
        """The windows completed since the last call, per W: ``(index of the first, rows)``.

        Window k starts at ``k * 0.04`` s (as in the batch path). It is complete once openSMILE
        has written its row and every LLD frame it covers; after :meth:`finish`, every window
        of the audio is (those that fit in it, as in a batch run).

        Returns
        -------
        dict
            Window -> (first window index, ndarray of shape (n_new, n_features), float64).
        """
        out = {}
        lld_counts = [self._lld_offset + len(rows) for rows in self._lld_rows.values()]
        for i, w in enumerate(self.windows):
            written = self._window_offset[i] + len(self._window_rows[i])
            if self._finished:
                duration = self.samples / self.sample_rate
                ready = min(written, max(int(np.floor((duration - w.seconds) / HOP_S + 1e-6)) + 1, 0))
            else:
                span = int(round(w.seconds / LLD_PERIOD_S))  # LLD frames a window covers
                ready = min([written] + [(n - span) // LLD_STEP + 1 for n in lld_counts])
            first = self._done[i]
            if ready <= first:
                out[w] = (first, np.empty((0, len(self.feature_set.feature_names()))))
                continue
            self._names()
            out[w] = (first, self._rows(i, w, first, ready))
            self._done[i] = ready
        self._drop_old_frames()
        return out

    def _rows(self, i: int, window: Window, first: int, stop: int) -> np.ndarray:
        """The full feature rows of windows ``first ... stop - 1`` of length ``window``."""
        offset = self._window_offset[i]
        rows = np.array(self._window_rows[i][first - offset:stop - offset], dtype=float)
        start = first * LLD_STEP - self._lld_offset
        end = (stop - 1) * LLD_STEP + int(round(window.seconds / LLD_PERIOD_S)) - self._lld_offset
        llds = {level: (self._lld_names[level], np.array(self._lld_rows[level][start:end], dtype=float).reshape(
            -1, len(self._lld_names[level])), LLD_PERIOD_S) for level in self.levels}
        return self.feature_set.window_rows(self._window_names[i], rows, llds, window)

    def _drop_old_frames(self) -> None:
        """Forget the window rows handed out and the LLD frames no window still to come covers (memory
        stays flat however long the stream)."""
        for i, done in enumerate(self._done):
            del self._window_rows[i][:done - self._window_offset[i]]
            self._window_offset[i] = done
        keep_from = min(self._done) * LLD_STEP  # the first LLD frame of the next window
        drop = keep_from - self._lld_offset
        if drop > 0:
            for rows in self._lld_rows.values():
                del rows[:drop]
            self._lld_offset = keep_from


def _appender(rows: list):
    """An external-sink callback that appends a copy of each row (openSMILE reuses its buffer)."""
    def append(data: np.ndarray) -> None:
        rows.append(np.array(data, dtype=np.float32))
    return append
