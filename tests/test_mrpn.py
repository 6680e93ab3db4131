"""MRPN model (Chang & Skarbek 2021): N1, N2, N3 train; only the fused branch runs at test time;
the residual perceptron changes the fused input but not the side heads' input; late fusion."""
from __future__ import annotations

import pytest
import torch

from recola_pipeline.mrpn.networks import (
    MultiModalNet,
    ResidualPerceptron,
    SequenceBranch,
    joint_from_unimodal,
    late_fusion,
    seed_ensemble,
    small_cnn,
    start_from_unimodal,
)

CLASSES = 3


def tiny_clips(n: int = 48, seed: int = 0):
    """Both modalities of tiny generated clips: the class sets the spectrogram's bright band and the
    face's bright quadrant, under noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    audio = torch.randn(n, 5, 1, 16, 16, generator=g) * 0.5
    video = torch.randn(n, 4, 3, 16, 16, generator=g) * 0.5
    for i, c in enumerate(labels.tolist()):
        audio[i, :, 0, 5 * c:5 * c + 5, :] += 1.5
        video[i, :, :, 8 * (c % 2):8 * (c % 2) + 8, 8 * (c // 2):8 * (c // 2) + 8] += 1.5
    return {"audio": audio, "video": video}, labels


def make_net(variant, modalities=("audio", "video"), aggregator="lstm", seed=0):
    torch.manual_seed(seed)
    chans = {"audio": 1, "video": 3}
    branches = {m: SequenceBranch(small_cnn(chans[m], 16), 16, hidden=16, aggregator=aggregator) for m in modalities}
    return MultiModalNet(branches, CLASSES, variant=variant)


def train(net, inputs, labels, steps=40):
    optimiser = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=3e-3)
    net.train()
    losses = []
    for step in range(steps):
        index = torch.arange(step * 16, step * 16 + 16) % len(labels)
        loss = net.loss(net({m: x[index] for m, x in inputs.items()}), labels[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("variant, aggregator", [("N1", "lstm"), ("N2", "lstm"), ("N3", "lstm"), ("N3", "transformer"),
                                                ("N3", "stats")])
def test_each_variant_learns_the_tiny_clips(variant, aggregator):
    inputs, labels = tiny_clips()
    net = make_net(variant, aggregator=aggregator)
    losses = train(net, inputs, labels)
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses
    net.eval()
    with torch.no_grad():
        accuracy = (net(inputs)["fused"].argmax(1) == labels).float().mean()
    assert accuracy > 0.8


def test_side_heads_add_their_losses_in_training_only():
    inputs, labels = tiny_clips(8)
    net = make_net("N2").train()
    out = net(inputs)
    assert set(out["side"]) == {"audio", "video"}
    expected = sum(torch.nn.functional.cross_entropy(o, labels) for o in (out["fused"], *out["side"].values()))
    assert torch.allclose(net.loss(out, labels), expected)
    assert "side" not in make_net("N1").train()(inputs)


def test_only_the_fused_branch_runs_in_eval_mode():
    inputs, _ = tiny_clips(8)
    net = make_net("N3")
    calls = []
    for head in net.side.values():
        head.register_forward_hook(lambda *args: calls.append(1))
    net.eval()
    out = net(inputs)
    assert set(out) == {"fused"} and calls == []
    net.train()
    net(inputs)
    assert len(calls) == 2


def test_residual_perceptron_changes_the_fused_input_not_the_side_heads_input():
    inputs, _ = tiny_clips(8)
    net = make_net("N3").train()
    seen = {}
    net.branches["audio"].register_forward_hook(lambda m, i, o: seen.__setitem__("vector", o.detach()))
    net.side["audio"].register_forward_hook(lambda m, i, o: seen.__setitem__("side_in", i[0].detach()))
    net.fusion.register_forward_hook(lambda m, i, o: seen.__setitem__("fusion_in", i[0].detach()))
    net(inputs)
    width = net.branches["audio"].hidden
    assert torch.equal(seen["side_in"], seen["vector"])  # side head: the original vector
    assert not torch.allclose(seen["fusion_in"][:, :width], seen["vector"])  # fusion: the updated one
    z = net.residual["audio"].norm(seen["vector"])  # and it is BN(v) + sigmoid(dense(BN(v)))
    assert torch.allclose(seen["fusion_in"][:, :width], z + torch.sigmoid(net.residual["audio"].dense(z)), atol=1e-6)


def test_residual_perceptron_formula():
    layer = ResidualPerceptron(4).eval()
    v = torch.randn(3, 4)
    z = layer.norm(v)
    assert torch.allclose(layer(v), z + torch.sigmoid(layer.dense(z)))


def test_late_fusion_trains_only_the_fusion_component():
    inputs, labels = tiny_clips()
    unimodal = {}
    for m in ("audio", "video"):
        unimodal[m] = make_net("N1", modalities=(m,), seed=1)
        train(unimodal[m], {m: inputs[m]}, labels, steps=20)
    net = late_fusion(unimodal, CLASSES)
    frozen = {k: v.clone() for k, v in net.branches.state_dict().items()}
    losses = train(net, inputs, labels, steps=30)
    assert all(torch.equal(v, frozen[k]) for k, v in net.branches.state_dict().items())  # BN statistics too
    assert sum(losses[-5:]) < sum(losses[:5])


def trained_unimodal_nets(inputs, labels):
    unimodal = {}
    for seed, m in enumerate(("audio", "video")):
        unimodal[m] = make_net("N1", modalities=(m,), aggregator="stats", seed=seed + 1)
        train(unimodal[m], {m: inputs[m]}, labels, steps=15)
        unimodal[m].eval()
    return unimodal


@pytest.mark.parametrize("variant", ["N1", "N2", "N3", "late"])
def test_start_from_unimodal_gives_the_product_rule(variant):
    inputs, labels = tiny_clips()
    unimodal = trained_unimodal_nets(inputs, labels)
    if variant == "late":
        net = late_fusion(unimodal, CLASSES)
    else:
        net = make_net(variant, aggregator="stats", seed=7)
    start_from_unimodal(net, unimodal).eval()
    with torch.no_grad():
        fused = net(inputs)["fused"]
        alone = {m: unimodal[m]({m: inputs[m]})["fused"] for m in unimodal}
    # summed scores, hence summed log-probabilities up to a constant per clip: the product rule
    assert torch.allclose(fused, alone["audio"] + alone["video"], atol=1e-4)
    product = torch.log_softmax(alone["audio"], 1) + torch.log_softmax(alone["video"], 1)
    assert torch.equal(fused.argmax(1), product.argmax(1))
    if variant in ("N2", "N3"):  # side heads: the unimodal scoring, batch norm folded in
        with torch.no_grad():
            for m in unimodal:
                vector = net.branches[m](inputs[m])
                assert torch.allclose(net.side[m](vector), alone[m], atol=1e-4)
    if variant != "late":  # copies: training the joint network leaves the unimodal ones alone
        assert all(a is not b for a, b in zip(net.parameters(), unimodal["audio"].parameters()))


def test_start_from_unimodal_n3_fusion_matches_on_a_training_batch_too():
    """In training mode batch norms use batch statistics: the N3 start is set so that its fusion
    component still gives N1's scores on a batch of branch vectors (exact up to the norms' eps)."""
    inputs, labels = tiny_clips()
    unimodal = trained_unimodal_nets(inputs, labels)
    nets = {v: start_from_unimodal(make_net(v, aggregator="stats", seed=7), unimodal).train() for v in ("N1", "N3")}
    vectors = {m: torch.randn(32, 16, generator=torch.Generator().manual_seed(i)) * 2 + 1
               for i, m in enumerate(unimodal)}

    def fused(net):
        parts = [net.residual[m](v) if net.residual is not None else v for m, v in vectors.items()]
        return net.fusion(torch.cat(parts, dim=1))

    with torch.no_grad():
        assert torch.allclose(fused(nets["N3"]), fused(nets["N1"]), atol=1e-3)


def test_start_from_unimodal_refuses_mismatched_networks():
    inputs, labels = tiny_clips()
    unimodal = trained_unimodal_nets(inputs, labels)
    with pytest.raises(ValueError, match="one unimodal network per modality"):
        start_from_unimodal(make_net("N1", aggregator="stats"), {"audio": unimodal["audio"]})
    with pytest.raises(ValueError, match="N1 network on video alone"):
        start_from_unimodal(make_net("N1", aggregator="stats"), {"audio": unimodal["audio"],
                                                                 "video": make_net("N2", modalities=("video",))})


def test_seed_ensemble_sums_the_scores_and_can_start_a_joint_network():
    inputs, labels = tiny_clips()
    members = []
    for seed in (3, 4, 5):
        members.append(make_net("N1", modalities=("audio",), aggregator="stats", seed=seed))
        train(members[-1], {"audio": inputs["audio"]}, labels, steps=10)
    ensemble = seed_ensemble(members, CLASSES).eval()
    assert seed_ensemble(members[:1], CLASSES) is members[0]
    with torch.no_grad():
        summed = sum(m.eval()({"audio": inputs["audio"]})["fused"] for m in members)
        assert torch.allclose(ensemble({"audio": inputs["audio"]})["fused"], summed, atol=1e-4)
    video = trained_unimodal_nets(inputs, labels)["video"]
    joint = joint_from_unimodal({"audio": ensemble, "video": video}, CLASSES, "N3").eval()
    with torch.no_grad():
        assert torch.allclose(joint(inputs)["fused"], summed + video({"video": inputs["video"]})["fused"], atol=1e-4)
