"""Multi-modal Residual Perceptron Network (Chang & Skarbek 2021) and its baselines, in torch.

Per modality, a :class:`SequenceBranch` turns a clip's sequence (face frames, spectrogram
segments, eGeMAPS LLD frames) into one vector: a feature extractor on every time step, then an
aggregator (LSTM: last hidden state; Transformer encoder: mean of its outputs; or statistics
pooling: mean and standard deviation of the steps' features, then a dense layer). Then:

* ``N1`` (naive end-to-end): the fusion component only: concatenated vectors -> batch norm ->
  dense -> class scores; loss = CE(fused).
* ``N2`` (multi-term loss): plus a scoring head per modality on its own vector; loss = CE(fused)
  + sum over modalities of CE(modality).
* ``N3`` = MRPN: N2 plus a :class:`ResidualPerceptron` per modality before fusion; the fusion
  component takes the updated vectors, the side heads the original ones.

At test time (``eval()``) only the fused branch runs. :func:`late_fusion` builds the late-fusion
baseline from unimodal networks trained alone: their branches frozen, only the fusion component
trained. :func:`start_from_unimodal` sets any of these networks to start where the product rule
of trained unimodal networks is (not in the seed, which starts every network from its extractors).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from . import AGGREGATORS, VARIANTS


class SequenceBranch(nn.Module):
    """Extractor per time step, then an aggregator over time: (B, T, ...) -> (B, hidden).

    Parameters
    ----------
    extractor : nn.Module
        Maps (N, ...) inputs to (N, feature_dim).
    feature_dim, hidden : int
    aggregator : {'lstm', 'transformer', 'stats'}
        ``stats``: statistics pooling (the mean and standard deviation over the clip's steps of
        every feature, then a dense layer with ReLU), as in x-vector speaker embeddings; not in
        the seed, which uses an LSTM.
    """

    def __init__(self, extractor: nn.Module, feature_dim: int, hidden: int = 128, aggregator: str = "lstm"):
        super().__init__()
        if aggregator not in AGGREGATORS:
            raise ValueError(f"aggregator must be one of {AGGREGATORS}, got {aggregator!r}")
        self.extractor, self.aggregator, self.hidden = extractor, aggregator, hidden
        if aggregator == "lstm":
            self.sequence = nn.LSTM(feature_dim, hidden, batch_first=True)
        elif aggregator == "stats":
            self.sequence = nn.Sequential(nn.Linear(2 * feature_dim, hidden), nn.ReLU())
        else:
            self.project = nn.Linear(feature_dim, hidden)
            layer = nn.TransformerEncoderLayer(hidden, nhead=4, dim_feedforward=2 * hidden, batch_first=True)
            self.sequence = nn.TransformerEncoder(layer, num_layers=2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Aggregate (B, T, ...) sequences; ``lengths`` (B,) marks padded steps of shorter clips.

        The extractor runs on real steps only; the LSTM reads each clip up to its own length and
        the Transformer masks and leaves out the padding from its mean.
        """
        batch, steps = x.shape[:2]
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        lengths = lengths.to("cpu", torch.long)
        valid = (torch.arange(steps)[None, :] < lengths[:, None]).to(x.device)
        extracted = self.extractor(x[valid])
        features = extracted.new_zeros(batch, steps, extracted.shape[-1])
        features[valid] = extracted
        if self.aggregator == "lstm":
            packed = nn.utils.rnn.pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
            _, (state, _) = self.sequence(packed)
            return state[-1]
        weights = valid.unsqueeze(-1).to(features.dtype)
        if self.aggregator == "stats":
            steps = weights.sum(dim=1)
            mean = (features * weights).sum(dim=1) / steps
            variance = (((features - mean.unsqueeze(1)) * weights) ** 2).sum(dim=1) / steps
            return self.sequence(torch.cat([mean, torch.sqrt(variance + 1e-6)], dim=1))
        encoded = self.sequence(self.project(features), src_key_padding_mask=~valid)
        return (encoded * weights).sum(dim=1) / weights.sum(dim=1)


class ResidualPerceptron(nn.Module):
    """``z = BN(v); z + sigmoid(W z + b)``: the per-modality update of MRPN before fusion."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm, self.dense = nn.BatchNorm1d(dim), nn.Linear(dim, dim)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        z = self.norm(v)
        return z + torch.sigmoid(self.dense(z))


class MultiModalNet(nn.Module):
    """N1, N2 or N3 (MRPN) over the given modality branches.

    Parameters
    ----------
    branches : dict
        Modality name -> :class:`SequenceBranch` (or any module giving (B, hidden)).
    n_classes : int
    variant : {'N1', 'N2', 'N3'}

    ``forward(inputs, lengths=None)`` takes dicts modality -> batch (and modality -> steps per
    clip, for padded batches) and returns a dict with ``fused`` logits
    and, in training mode for N2/N3, ``side`` logits per modality.
    """

    def __init__(self, branches: dict[str, nn.Module], n_classes: int, variant: str = "N3"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.branches = nn.ModuleDict(branches)
        dims = {m: b.hidden for m, b in branches.items()}
        width = sum(dims.values())
        self.fusion = nn.Sequential(nn.BatchNorm1d(width), nn.Linear(width, n_classes))
        self.residual = nn.ModuleDict({m: ResidualPerceptron(d) for m, d in dims.items()}) if variant == "N3" else None
        self.side = nn.ModuleDict({m: nn.Linear(d, n_classes) for m, d in dims.items()}) if variant != "N1" else None

    def forward(self, inputs: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor] | None = None) -> dict:
        lengths = lengths or {}
        vectors = {m: branch(inputs[m], lengths.get(m)) for m, branch in self.branches.items()}
        fused_in = [self.residual[m](v) if self.residual is not None else v for m, v in vectors.items()]
        out = {"fused": self.fusion(torch.cat(fused_in, dim=1))}
        if self.training and self.side is not None:
            out["side"] = {m: self.side[m](v) for m, v in vectors.items()}
        return out

    def train(self, mode: bool = True) -> "MultiModalNet":
        """Like ``nn.Module.train``, but frozen branches (late fusion) stay in eval mode."""
        super().train(mode)
        for branch in self.branches.values():
            if not any(p.requires_grad for p in branch.parameters()):
                branch.eval()
        return self

    @staticmethod
    def loss(outputs: dict, target: torch.Tensor) -> torch.Tensor:
        """CE(fused) plus, for N2/N3 in training, the sum of the modalities' CE."""
        loss = F.cross_entropy(outputs["fused"], target)
        for logits in outputs.get("side", {}).values():
            loss = loss + F.cross_entropy(logits, target)
        return loss


def late_fusion(unimodal: dict[str, MultiModalNet], n_classes: int) -> MultiModalNet:
    """The late-fusion baseline: the branches of unimodal networks trained alone, frozen, under
    a new fusion component (the only part left to train)."""
    branches = {m: net.branches[m] for m, net in unimodal.items()}
    for branch in branches.values():
        for parameter in branch.parameters():
            parameter.requires_grad_(False)
    return MultiModalNet(branches, n_classes, variant="N1")


class BranchEnsemble(nn.Module):
    """Branches of one modality side by side: (B, T, ...) -> (B, sum of their ``hidden``)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.hidden = sum(member.hidden for member in members)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([member(x, lengths) for member in self.members], dim=1)


def _one_modality_n1(net: MultiModalNet, modality: str) -> MultiModalNet:
    if net.variant != "N1" or list(net.branches) != [modality]:
        raise ValueError(f"the {modality} network must be an N1 network on {modality} alone")
    return net


def _blocks(sources: list[MultiModalNet]):
    """Each source network with its block (a slice) of the concatenated vectors it scores."""
    start = 0
    for source in sources:
        width = source.fusion[1].in_features
        yield source, slice(start, start + width)
        start += width


@torch.no_grad()
def _scorers_side_by_side(norm: nn.BatchNorm1d, dense: nn.Linear, sources: list[MultiModalNet]) -> None:
    """Set a fusion component's norm and dense layer to the sources' scoring layers side by side
    (block by block of the concatenated vectors; biases summed): the sum of their scores."""
    dense.bias.zero_()
    for source, block in _blocks(sources):
        source_norm, source_dense = source.fusion
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(norm, name)[block] = getattr(source_norm, name)
        dense.weight[:, block] = source_dense.weight
        dense.bias += source_dense.bias


def seed_ensemble(nets: list[MultiModalNet], n_classes: int) -> MultiModalNet:
    """One-modality N1 networks (e.g. trained from different seeds) as one N1 network whose fused
    scores are the sum of theirs: the product rule of their class probabilities.

    Its branch is a :class:`BranchEnsemble` of theirs (the same modules, not copies); a single
    network is returned as it is.
    """
    (modality,) = nets[0].branches
    for net in nets:
        _one_modality_n1(net, modality)
    if len(nets) == 1:
        return nets[0]
    ensemble = MultiModalNet({modality: BranchEnsemble([net.branches[modality] for net in nets])}, n_classes, "N1")
    _scorers_side_by_side(*ensemble.fusion, nets)
    return ensemble


@torch.no_grad()
def start_from_unimodal(net: MultiModalNet, unimodal: dict[str, MultiModalNet]) -> MultiModalNet:
    """Set ``net`` (N1, N2, N3 or a late fusion) to start from trained one-modality N1 networks.

    Afterwards, in eval mode, ``net``'s fused scores are the sum of the unimodal networks' scores:
    the product rule of their class probabilities (summed log-probabilities differ from summed
    scores by a constant per clip and network). Training then starts from that late fusion.

    * branches: the unimodal networks' branch weights (for :func:`late_fusion`, the same modules);
    * fusion component: its batch norm takes each unimodal network's scoring batch norm on that
      modality's block, its dense layer their dense layers side by side, biases summed;
    * N3: each residual perceptron takes its modality's scoring batch norm, and a dense layer of
      zeros, so it adds sigmoid(0) = 1/2 to every feature; the fusion batch norm's block is set
      to take that 1/2 away again, and otherwise to pass its input on (on a training batch too,
      whose variance is then the perceptron norm's weight squared, up to the norms' eps);
    * N2, N3 side heads: the unimodal scoring layer with its batch norm folded in (exact with the
      norm's running statistics).

    Parameters
    ----------
    net : MultiModalNet
        Freshly built over the same modalities, branch widths and classes.
    unimodal : dict
        Modality -> trained one-modality N1 network (or :func:`seed_ensemble` of several).

    Returns
    -------
    MultiModalNet
        ``net``, changed in place.
    """
    if set(unimodal) != set(net.branches):
        raise ValueError(f"start_from_unimodal: need one unimodal network per modality of {list(net.branches)}, "
                         f"got {list(unimodal)}")
    sources = [_one_modality_n1(unimodal[m], m) for m in net.branches]
    for m, branch in net.branches.items():
        branch.load_state_dict(unimodal[m].branches[m].state_dict())
    norm, dense = net.fusion
    _scorers_side_by_side(norm, dense, sources)
    for m, (source, block) in zip(net.branches, _blocks(sources)):
        source_norm, source_dense = source.fusion
        if net.residual is not None:
            perceptron = net.residual[m]
            perceptron.norm.load_state_dict(source_norm.state_dict())
            perceptron.dense.weight.zero_()
            perceptron.dense.bias.zero_()
            gamma = source_norm.weight
            norm.running_mean[block] = source_norm.bias + 0.5
            norm.running_var[block] = gamma ** 2
            norm.weight[block] = torch.sqrt(gamma ** 2 + norm.eps)
            norm.bias[block] = source_norm.bias
        if net.side is not None:
            scale = source_norm.weight / torch.sqrt(source_norm.running_var + source_norm.eps)
            net.side[m].weight.copy_(source_dense.weight * scale)
            net.side[m].bias.copy_(source_dense.bias
                                   + source_dense.weight @ (source_norm.bias - scale * source_norm.running_mean))
    return net


def joint_from_unimodal(unimodal: dict[str, MultiModalNet], n_classes: int, variant: str) -> MultiModalNet:
    """An N1, N2 or N3 network over copies of the unimodal networks' branches, started where
    their product rule is (:func:`start_from_unimodal`); the unimodal networks stay unchanged."""
    branches = {m: copy.deepcopy(net.branches[m]) for m, net in unimodal.items()}
    return start_from_unimodal(MultiModalNet(branches, n_classes, variant=variant), unimodal)


def small_cnn(in_chans: int, width: int = 32) -> nn.Sequential:
    """A 4-layer CNN extractor for the CPU setting: (N, C, H, W) -> (N, width)."""
    layers, channels = [], in_chans
    for out in (width // 4, width // 2, width, width):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*layers[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())
