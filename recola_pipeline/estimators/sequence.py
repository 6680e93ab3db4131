"""A recurrent regressor (GRU or LSTM) over each recording's frames, trained with a CCC loss.

The MuSe baseline recipe (MuSe 2020-2024): a recurrent network reads the frame-level features
of a recording at the 40 ms label rate and predicts one dimension at every frame. It is trained
on segments of ``segment_frames`` frames taken every ``segment_hop`` frames, with the loss
1 - CCC over the labelled frames of a batch, Adam, and early stopping on the CCC of a slice of
the *training* recordings held out from the fit (``validation_fraction``, whole recordings:
speaker-disjoint when each recording is one speaker, as in RECOLA and AVEC 2016). Devel data
never stops or steers a fit; it only chooses between settings, as for the SVR.

The annotation delay is either learned (``delay_s = 0``: the network sees the past, and a
bidirectional one the future, of every frame) or applied as D, with the convention of
:mod:`~recola_pipeline.estimators.delay` (features at t learn gold at t + D, predictions
shifted forward by D).

``n_seeds`` networks, seeded ``random_state``, ``random_state + 1``, ..., are trained and their
predictions averaged; :meth:`SequenceRegressor.predict_members` gives each one's, for the spread.
The fitted weights are numpy arrays (``weights_``), so a model file holds no torch object.
Same seed and data give byte-identical weights and predictions on one thread (``n_threads=1``).
torch is imported on first fit or predict (the ``[sequence]`` extra).
"""
from __future__ import annotations

import contextlib

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..labels import delay_frames
from ..metrics import labelled_ccc
from ..registry import require
from .delay import aligned_predictions, delayed_targets, recording_groups, segments, target

CELLS = ("gru", "lstm")


def _torch():
    return require("torch", what="the recurrent regressors (train.estimators gru or lstm)", extra="sequence")


@contextlib.contextmanager
def _threads(n: int):
    """torch's intra-op threads bounded to ``n`` for the duration (restored after)."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield torch
    finally:
        torch.set_num_threads(before)


def _network(torch, n_features: int, cell: str, hidden: int, layers: int, bidirectional: bool, dropout: float):
    """The recurrent network: ``layers`` stacked GRU/LSTM layers, dropout, one linear output per frame."""
    nn = torch.nn

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
            self.rnn = rnn(n_features, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                           dropout=dropout if layers > 1 else 0.0)
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(hidden * (2 if bidirectional else 1), 1)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(self.dropout(out)).squeeze(-1)

    return Recurrent()


def ccc_loss(torch, pred, gold, mask):
    """1 - CCC (population moments) over the frames where ``mask`` is true, pooled over the batch."""
    p, g = pred[mask], gold[mask]
    pm, gm = p.mean(), g.mean()
    covariance = ((p - pm) * (g - gm)).mean()
    return 1.0 - 2.0 * covariance / (p.var(unbiased=False) + g.var(unbiased=False) + (pm - gm) ** 2 + 1e-8)


def training_segments(n_frames: int, length: int, hop: int) -> list[slice]:
    """Segments of ``length`` frames every ``hop`` frames covering a recording, the last one ending at its end
    (one segment of the whole recording when it is shorter than ``length``)."""
    if n_frames <= length:
        return [slice(0, n_frames)]
    starts = list(range(0, n_frames - length + 1, hop))
    if starts[-1] + length < n_frames:
        starts.append(n_frames - length)
    return [slice(s, s + length) for s in starts]


def validation_split(recordings: list, fraction: float, seed: int) -> tuple[list, list]:
    """Whole recordings held out of the fit for early stopping: ``round(fraction * n)``, at least one, and at least
    one left to fit; drawn with ``seed``.

    Raises
    ------
    ValueError
        Fewer than two recordings: nothing can be held out.
    """
    if len(recordings) < 2:
        raise ValueError("a recurrent regressor needs at least 2 training recordings (one is held out of the fit "
                         f"for early stopping); got {len(recordings)}")
    n_held = min(len(recordings) - 1, max(1, round(fraction * len(recordings))))
    order = np.random.default_rng(seed).permutation(len(recordings))
    held = sorted(order[:n_held])
    return [recordings[i] for i in range(len(recordings)) if i not in held], [recordings[i] for i in held]


class SequenceRegressor(TransformerMixin, RegressorMixin, BaseEstimator):
    """GRU or LSTM regressor over recordings, trained with a CCC loss on segments (the MuSe baseline).

    Rows are label frames, recordings one after another; ``groups`` (each row's recording,
    routed by scikit-learn's metadata routing) cuts them into sequences. Without it, all rows
    are one recording. In a :class:`sklearn.pipeline.Pipeline` it is the ``regress`` step:
    ``transform`` gives the predictions as one column.

    Parameters
    ----------
    cell : {'gru', 'lstm'}
    hidden : int
        Units per direction and layer.
    layers : int
    bidirectional : bool
        Read each recording in both directions (offline prediction only).
    dropout : float
        Between recurrent layers and before the output layer.
    learning_rate : float
        Adam's step size.
    segment_frames, segment_hop : int
        Training segments: length and hop in frames (MuSe: 200 and 100, i.e. 8 s every 4 s).
    batch_size : int
        Segments per step.
    max_epochs, patience : int
        Training stops after ``patience`` epochs without a better held-out CCC; the best epoch's
        weights are kept.
    validation_fraction : float
        Share of the training recordings held out of the fit for early stopping.
    delay_s : float
        Annotation delay D applied (0: learned by the network).
    n_seeds : int
        Networks trained with seeds ``random_state + i`` and averaged.
    random_state : int
    n_threads : int
        torch threads used by fit and predict.

    Attributes
    ----------
    weights_ : list of dict
        Per network, its parameters as float32 numpy arrays (torch ``state_dict`` names).
    epochs_ : list of int
        The epoch whose weights each network kept.
    validation_ccc_ : list of float
        Each network's CCC on its held-out training recordings at that epoch.
    delay_frames_ : int
    n_features_in_ : int
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__transform = {"groups": True}

    def __init__(self, cell: str = "gru", hidden: int = 32, layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.2, learning_rate: float = 0.001, segment_frames: int = 200, segment_hop: int = 100,
                 batch_size: int = 16, max_epochs: int = 40, patience: int = 6, validation_fraction: float = 0.25,
                 delay_s: float = 0.0, n_seeds: int = 3, random_state: int = 0, n_threads: int = 1):
        self.cell = cell
        self.hidden = hidden
        self.layers = layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.segment_frames = segment_frames
        self.segment_hop = segment_hop
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.delay_s = delay_s
        self.n_seeds = n_seeds
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X, y, groups=None):
        """Train ``n_seeds`` networks on features ``X`` and the unshifted gold ``y`` (NaN: unlabelled frame, never
        in the loss); ``groups`` names each row's recording."""
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        X = validate_data(self, X, dtype=np.float32)
        y = target(self, y, len(X))
        groups = recording_groups(groups, len(X))
        self.delay_frames_ = delay_frames(self.delay_s)
        targets, rows = delayed_targets(y, groups, self.delay_frames_)
        if not rows.any():
            raise ValueError("no row has a finite target at its delay: nothing to fit")
        targets = np.where(rows, targets, np.nan)
        self.weights_, self.epochs_, self.validation_ccc_ = [], [], []
        with _threads(self.n_threads) as torch:
            for i in range(self.n_seeds):
                weights, epoch, score = self._fit_network(torch, X, y, targets, groups, self.random_state + i)
                self.weights_.append(weights)
                self.epochs_.append(epoch)
                self.validation_ccc_.append(score)
        return self

    def _fit_network(self, torch, X, gold, targets, groups, seed: int):
        fitted, held = validation_split(segments(groups), self.validation_fraction, seed)
        pieces = [slice(seg.start + s.start, seg.start + s.stop) for seg in fitted
                  for s in training_segments(seg.stop - seg.start, self.segment_frames, self.segment_hop)]
        pieces = [p for p in pieces if np.isfinite(targets[p]).any()]
        if not pieces:
            raise ValueError("no training segment has a labelled frame: nothing to fit")
        length = max(p.stop - p.start for p in pieces)
        inputs = np.zeros((len(pieces), length, X.shape[1]), dtype=np.float32)
        outputs = np.full((len(pieces), length), np.nan, dtype=np.float32)
        for k, p in enumerate(pieces):
            inputs[k, :p.stop - p.start] = X[p]
            outputs[k, :p.stop - p.start] = targets[p]
        inputs, outputs = torch.from_numpy(inputs), torch.from_numpy(outputs)
        mask = torch.isfinite(outputs)
        outputs = torch.nan_to_num(outputs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = _network(torch, X.shape[1], self.cell, self.hidden, self.layers, self.bidirectional,
                               self.dropout)
            optimiser = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
            order = torch.Generator().manual_seed(seed)
            best, best_epoch, best_state, stale = -np.inf, 0, None, 0
            for epoch in range(1, self.max_epochs + 1):
                network.train()
                for batch in torch.randperm(len(pieces), generator=order).split(self.batch_size):
                    if not mask[batch].any():
                        continue
                    optimiser.zero_grad()
                    loss = ccc_loss(torch, network(inputs[batch]), outputs[batch], mask[batch])
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                    optimiser.step()
                score = self._held_out_ccc(torch, network, X, gold, held)
                if score > best:
                    best, best_epoch, stale = score, epoch, 0
                    best_state = {k: v.detach().numpy().copy() for k, v in network.state_dict().items()}
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        if best_state is None:  # the held-out CCC was never finite (e.g. constant predictions)
            best_state = {k: v.detach().numpy().copy() for k, v in network.state_dict().items()}
        return best_state, best_epoch, float(best)

    def _held_out_ccc(self, torch, network, X, gold, held: list[slice]) -> float:
        network.eval()
        preds, golds = [], []
        with torch.no_grad():
            for seg in held:
                pred = network(torch.from_numpy(X[seg])[None]).numpy()[0].astype(float)
                preds.append(aligned_predictions(pred, np.zeros(len(pred)), self.delay_frames_))
                golds.append(gold[seg])
        score = labelled_ccc(np.concatenate(golds), np.concatenate(preds))
        return score if np.isfinite(score) else -np.inf

    def predict_members(self, X, groups=None) -> np.ndarray:
        """Each network's predictions, aligned with the unshifted gold: shape (n_rows, n_seeds)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        groups = recording_groups(groups, len(X))
        out = np.empty((len(X), len(self.weights_)))
        with _threads(self.n_threads) as torch:
            for j, weights in enumerate(self.weights_):
                network = _network(torch, X.shape[1], self.cell, self.hidden, self.layers, self.bidirectional,
                                   self.dropout)
                try:
                    network.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
                except RuntimeError as exc:
                    raise ValueError(f"the weights of network {j} do not fit its architecture ({self.cell}, hidden "
                                     f"{self.hidden}, {self.layers} layers): {str(exc).splitlines()[0]}") from None
                network.eval()
                with torch.no_grad():
                    for seg in segments(groups):
                        out[seg, j] = network(torch.from_numpy(X[seg])[None]).numpy()[0]
        return aligned_predictions(out, groups, self.delay_frames_)

    def predict(self, X, groups=None):
        """The networks' mean prediction per row, aligned with the unshifted gold."""
        return self.predict_members(X, groups).mean(axis=1)

    def transform(self, X, groups=None):
        """The predictions as one column, for the post-processing step of a pipeline."""
        return self.predict(X, groups)[:, np.newaxis]


def combine(members: list[SequenceRegressor]) -> SequenceRegressor:
    """One fitted regressor averaging the networks of fitted single-network ``members`` (same settings but the
    seed); equal to fitting ``n_seeds = len(members)`` from the first member's seed when their seeds follow on."""
    first = members[0]
    combined = SequenceRegressor(**{**first.get_params(), "n_seeds": len(members)})
    combined.n_features_in_ = first.n_features_in_
    combined.delay_frames_ = first.delay_frames_
    combined.weights_ = [w for m in members for w in m.weights_]
    combined.epochs_ = [e for m in members for e in m.epochs_]
    combined.validation_ccc_ = [s for m in members for s in m.validation_ccc_]
    return combined


def recurrent_steps(model, prefix: str = "") -> list[tuple[str, SequenceRegressor]]:
    """``(path, regressor)`` of every recurrent regressor in a system pipeline, late fusion's fused systems
    included (path e.g. ``regress`` or ``fuse/gru-audio/regress``)."""
    found = []
    for name, step in getattr(model, "steps", ()):
        if isinstance(step, SequenceRegressor):
            found.append((f"{prefix}{name}", step))
        for system, pipeline, _ in getattr(step, "systems", ()):
            found += recurrent_steps(pipeline, f"{prefix}{name}/{system}/")
    return found


def detach_weights(model) -> dict[str, np.ndarray]:
    """Take the networks' weights out of ``model`` (left with empty ``weights_``): ``path/network/parameter ->
    array``, for a safetensors file beside the model's skops file."""
    tensors = {}
    for path, step in recurrent_steps(model):
        for i, weights in enumerate(step.weights_):
            tensors.update({f"{path}/{i}/{name}": np.ascontiguousarray(array) for name, array in weights.items()})
        step.weights_ = []
    return tensors


def attach_weights(model, tensors: dict[str, np.ndarray], source) -> None:
    """Put the weights :func:`detach_weights` took back into ``model``.

    Raises
    ------
    ValueError
        ``tensors`` lacks a network's weights or holds others (``source`` is named).
    """
    used = set()
    for path, step in recurrent_steps(model):
        networks = sorted({int(k.split("/")[-2]) for k in tensors if k.rsplit("/", 2)[0] == path})
        if len(networks) != step.n_seeds:
            raise ValueError(f"{source}: holds {len(networks)} networks for {path}, the model has {step.n_seeds}")
        step.weights_ = []
        for i in networks:
            names = [k for k in tensors if k.startswith(f"{path}/{i}/")]
            step.weights_.append({k.rsplit("/", 1)[1]: tensors[k] for k in names})
            used.update(names)
    if used != set(tensors):
        raise ValueError(f"{source}: holds weights no network of the model reads ({sorted(set(tensors) - used)[:3]})")
