"""Your own nn.Module as a problem (from_module) and the networks of eoslab.architectures, against independent truths:
the built-in functional MLP, one-pass values, finite differences and dense eigendecompositions."""
import math
import warnings
import weakref

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import eoslab
from eoslab.architectures import convnet, fully_connected, resnet, vision_transformer
from eoslab.curvature import HessianOperator, hessian, top_eigenpairs
from eoslab.optim import GD
from eoslab.problems import digits_classification, from_module

F64 = torch.float64


def mse(out, y):  # Cohen et al.'s square loss: half the squared error summed over outputs, averaged over examples
    return 0.5 * ((out - y) ** 2).sum(1).mean()


def digits_pair(n=60, widths=(16, 16)):
    """The built-in digits MLP and the same network as an nn.Sequential with the same weights."""
    ref = digits_classification(n, widths=widths, dtype="float64")
    sizes = [64, *widths, 10]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.Tanh()]
    net = nn.Sequential(*layers[:-1]).double()
    torch.nn.utils.vector_to_parameters(ref.theta0, net.parameters())
    return ref, net


def images(n, channels, side, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, channels, side, side, generator=g, dtype=F64)
    return X, torch.nn.functional.one_hot(torch.randint(classes, (n,), generator=g), classes).to(F64)


def tiny_models():
    """Small float64 instances of each architecture on 1x4x4 images, 3 classes, with smooth activations."""
    return {
        "fc": fully_connected(16, (6,), 3, activation="tanh").double(),
        "cnn": convnet(1, 4, (3, 2), 3, activation="tanh", pooling="average").double(),
        "resnet": resnet(1, 3, widths=(3, 4), activation="tanh").double(),
        "vit": vision_transformer(1, 4, 2, 3, dim=8, depth=1, heads=2, mlp_dim=8).double(),
    }


def random_unit(size, seed):
    v = torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return v / v.norm()


# -- agreement with the built-in network ---------------------------------------------------------------------
@pytest.mark.parametrize("chunk_size", [None, 16, 7])
def test_sequential_mlp_reproduces_the_builtin_digits_mlp(chunk_size):
    ref, net = digits_pair()
    problem = from_module(net, mse, (ref.X, ref.Y), chunk_size=chunk_size)
    assert problem.num_params == ref.num_params and torch.equal(problem.theta0, ref.theta0)
    theta = ref.theta0 + 0.05 * random_unit(ref.num_params, 1)
    v = random_unit(ref.num_params, 2)
    loss, grad = problem.value_and_grad(theta)
    ref_loss, ref_grad = ref.value_and_grad(theta)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-13)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(HessianOperator(problem, theta).matvec(v), HessianOperator(ref, theta).matvec(v),
                               rtol=1e-11, atol=1e-13)
    ours, theirs = (top_eigenpairs(p, theta, k=2, eig_tol=1e-9).values for p in (problem, ref))
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=0)
    if chunk_size is None:  # one pass: the same operations in the same order, so the same bits
        assert float(loss) == float(ref_loss) and torch.equal(grad, ref_grad)


def test_gd_and_sgd_runs_on_a_module_follow_the_builtin_network():
    ref, net = digits_pair()
    problem = from_module(net, mse, (ref.X, ref.Y), chunk_size=13)
    a = eoslab.run(problem, GD(0.5), 30, measure_every=10, progress=False)
    b = eoslab.run(ref, GD(0.5), 30, measure_every=10, progress=False)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-10)
    np.testing.assert_allclose(a.sharpness, b.sharpness, rtol=1e-6)
    a = eoslab.run(problem, GD(0.5), 30, batch_size=8, seed=3, num_eigs=0, progress=False)
    b = eoslab.run(ref, GD(0.5), 30, batch_size=8, seed=3, num_eigs=0, progress=False)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-10)  # the same seeded batches, the same steps


# -- chunks ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tensors", "dataset", "loader"])
def test_chunked_values_equal_the_one_pass_values(kind):
    X, Y = images(23, 1, 4)
    whole = from_module(convnet(1, 4, (3,), 3, activation="tanh").double(), mse, (X, Y))
    data = {"tensors": (X, Y), "dataset": TensorDataset(X, Y), "loader": DataLoader(TensorDataset(X, Y), 5)}[kind]
    chunked = from_module(whole.model, mse, data, chunk_size=None if kind == "loader" else 5)
    assert chunked.chunk_size == 5 and len(chunked.loss_chunks()) == 5
    theta, u, w = whole.theta0, random_unit(whole.num_params, 1), random_unit(whole.num_params, 2)
    one, many = HessianOperator(whole, theta), HessianOperator(chunked, theta)
    assert float(many.value) == pytest.approx(float(one.value), rel=1e-13)
    assert float(chunked.loss(theta)) == pytest.approx(float(one.value), rel=1e-13)
    torch.testing.assert_close(many.gradient, one.gradient, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(many.matvec(u), one.matvec(u), rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(many.third_derivative(u, w), one.third_derivative(u, w), rtol=1e-10, atol=1e-12)
    batch = torch.tensor([3, 17, 4, 9, 21, 0, 12])  # a mini-batch larger than a chunk
    a, b = whole.value_and_grad(theta, batch), chunked.value_and_grad(theta, batch)
    assert float(a[0]) == pytest.approx(float(b[0]), rel=1e-13)
    torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-14)


def peak_saved_bytes(fn):
    """The most bytes that autograd graphs hold at once while ``fn`` runs (tensors saved for backward, counted
    when saved and released when freed): the activation memory that chunking is meant to bound."""
    state = {"live": 0, "peak": 0}

    def release(size):
        state["live"] -= size

    def pack(t):
        size = t.numel() * t.element_size()
        state["live"] += size
        state["peak"] = max(state["peak"], state["live"])
        weakref.finalize(t, release, size)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return state["peak"]


def test_chunked_memory_is_bounded_by_the_chunk_for_full_batches_mini_batches_and_subsets():
    X, Y = images(64, 1, 4)
    model = convnet(1, 4, (3,), 3).double()
    v = random_unit(from_module(model, mse, (X, Y)).num_params, 0)

    def product_memory(n, chunk_size, batch=None):
        problem = from_module(model, mse, (X[:n], Y[:n]), chunk_size=chunk_size)
        loss = problem if batch is None else problem.batch_loss(batch)
        return peak_saved_bytes(lambda: HessianOperator(loss, problem.theta0).matvec(v))

    one_chunk, whole = product_memory(8, None), product_memory(64, None)
    assert whole > 4 * one_chunk  # the measure sees activations grow with the examples in a pass
    assert product_memory(64, 8) < 1.5 * one_chunk  # eight chunks of 8: the memory of one
    assert product_memory(64, 8, batch=torch.arange(0, 64, 2)) < 1.5 * one_chunk  # a mini-batch of 32, in chunks
    # a parameter subset: the parameters left out of theta enter detached, so a plain loss keeps no graph
    head = from_module(model, mse, (X, Y), params="4", chunk_size=8)  # the linear head
    assert not head.loss(head.theta0).requires_grad
    assert peak_saved_bytes(lambda: head.loss(head.theta0)) == 0


def test_a_chunk_whose_loss_does_not_depend_on_theta_contributes_zero():
    X, Y = images(12, 1, 4)
    problem = from_module(fully_connected(16, (3,), 3).double(), lambda out, y: y.sum(1).mean(), (X, Y),
                          chunk_size=5)
    op = HessianOperator(problem, problem.theta0)
    assert torch.equal(op.matvec(random_unit(problem.num_params, 0)), torch.zeros(problem.num_params, dtype=F64))
    assert torch.equal(op.gradient, torch.zeros(problem.num_params, dtype=F64))
    assert float(op.value) == pytest.approx(float(Y.sum(1).mean()))


# -- the architectures against finite differences and dense eigendecompositions --------------------------------
@pytest.mark.parametrize("name", ["fc", "cnn", "resnet", "vit"])
def test_products_match_finite_differences_and_top_eigenvalues_match_eigh(name):
    X, Y = images(6, 1, 4)
    problem = from_module(tiny_models()[name], mse, (X, Y), chunk_size=4)
    theta = problem.theta0
    u, v = random_unit(problem.num_params, 3), random_unit(problem.num_params, 4)
    op = HessianOperator(problem, theta)
    h = 1e-4  # central differences: error h² times the next derivative, about 1e-8 here
    grad = lambda t: problem.value_and_grad(t)[1]  # noqa: E731
    fd_hv = (grad(theta + h * v) - grad(theta - h * v)) / (2 * h)
    hv = op.matvec(v)
    assert float((hv - fd_hv).norm()) <= 1e-6 * max(1.0, float(hv.norm()))
    # the third derivative ∇(uᵀHu) against central differences of uᵀH(θ)u along v
    quad = lambda t: float(u @ HessianOperator(problem, t).matvec(u))  # noqa: E731
    fd_third = (quad(theta + h * v) - quad(theta - h * v)) / (2 * h)
    third = float(op.third_derivative(u) @ v)
    assert third == pytest.approx(fd_third, rel=1e-5, abs=1e-7)
    # top eigenvalues of the Lanczos solver against eigh of the dense Hessian (built by a separate code path)
    dense = torch.linalg.eigvalsh(hessian(problem, theta)).flip(0)
    values = top_eigenpairs(problem, theta, k=2, eig_tol=1e-9).values
    torch.testing.assert_close(values, dense[:2], rtol=1e-6, atol=1e-9)


def test_one_layer_sharpness_is_the_top_eigenvalue_of_its_diagonal_block():
    X, Y = images(8, 1, 4)
    model = convnet(1, 4, (3, 2), 3, activation="tanh").double()
    full = from_module(model, mse, (X, Y))
    layer = from_module(model, mse, (X, Y), params="3")  # the second convolution: weight and bias
    assert layer.names == ["3.weight", "3.bias"] and layer.num_params == 3 * 2 * 9 + 2
    pieces = full.unflatten(full.theta0)
    start = sum(pieces[n].numel() for n in full.names[: full.names.index("3.weight")])  # the layer's offset in θ
    block = hessian(full, full.theta0)[start:start + layer.num_params, start:start + layer.num_params]
    expected = torch.linalg.eigvalsh(block)[-1]
    assert float(top_eigenpairs(layer, layer.theta0, eig_tol=1e-10).values[0]) == pytest.approx(float(expected),
                                                                                              rel=1e-7)
    same = from_module(model, mse, (X, Y), params=lambda name, p: name.startswith("3."))
    assert same.names == layer.names
    layer.write_to(layer.theta0 + 1.0)  # writes the layer back into the module, the others untouched
    assert torch.equal(model[3].bias.detach(), layer.theta0[-2:] + 1.0)
    assert torch.equal(model[0].bias.detach(), full.unflatten(full.theta0)["0.bias"])


# -- buffers, modes and bad input -------------------------------------------------------------------------------
def test_batchnorm_in_training_mode_is_refused_and_in_eval_mode_is_a_fixed_function():
    X, Y = images(12, 1, 4)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(),
                        nn.Linear(32, 3)).double()
    with pytest.raises(ValueError, match="train=False"):
        from_module(net, mse, (X, Y), train=True)
    with torch.no_grad():
        net[1].running_mean.fill_(0.3)
        net[1].running_var.fill_(2.0)
    chunked, whole = from_module(net, mse, (X, Y), chunk_size=5), from_module(net, mse, (X, Y))
    assert not net.training
    assert float(chunked.loss(chunked.theta0)) == pytest.approx(float(whole.loss(whole.theta0)), rel=1e-13)
    assert float(net[1].running_mean[0]) == 0.3  # the running statistics are read, never updated


def test_dropout_in_training_mode_warns_that_curvature_is_not_deterministic():
    X, Y = images(8, 1, 4)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)).double()
    with pytest.warns(RuntimeWarning, match="not deterministic"):
        from_module(net, mse, (X, Y), train=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_module(net, mse, (X, Y))


def test_bad_input_is_refused_before_any_work():
    X, Y = images(8, 1, 4)
    net = fully_connected(16, (4,), 3).double()
    with pytest.raises(ValueError, match="chunk_size"):
        from_module(net, mse, (X, Y), chunk_size=0)
    with pytest.raises(ValueError, match="shuffle=False"):
        from_module(net, mse, DataLoader(TensorDataset(X, Y), 4, shuffle=True))
    with pytest.raises(ValueError, match="params"):
        from_module(net, mse, (X, Y), params=["7"])
    with pytest.raises(ValueError, match="mean"):
        from_module(net, lambda out, y: ((out - y) ** 2).sum(), (X, Y))
    with pytest.raises(ValueError, match="same number"):
        from_module(net, mse, (X, Y[:5]))
    with pytest.raises(TypeError, match="nn.Module"):
        from_module(lambda x: x, mse, (X, Y))
    with pytest.raises(TypeError, match="data"):
        from_module(net, mse, X)
    with pytest.raises(ValueError, match="image_size"):
        convnet(3, 30, (32, 32))
    with pytest.raises(ValueError, match="patch_size"):
        vision_transformer(3, 32, 5)
    with pytest.raises(ValueError, match="activation"):
        fully_connected(4, activation="swish")


def test_what_functional_call_cannot_evaluate_or_a_mean_cannot_chunk_is_refused_with_the_reason():
    X, Y = images(12, 1, 4)
    lin = nn.Linear(16, 16).double()
    with pytest.raises(ValueError, match="registered again"):  # one submodule under two names
        from_module(nn.Sequential(nn.Flatten(), lin, nn.Tanh(), lin, nn.Linear(16, 3)).double(), mse, (X, Y))
    labels = torch.arange(12) % 3
    net = fully_connected(16, (4,), 3).double()
    with pytest.raises(ValueError, match="class weights"):
        from_module(net, nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0], dtype=F64)), (X, labels))
    with pytest.raises(ValueError, match="ignore_index"):
        from_module(net, nn.CrossEntropyLoss(ignore_index=2), (X, labels))
    with pytest.raises(ValueError, match="reduction"):
        from_module(net, nn.MSELoss(reduction="sum"), (X, Y))
    with torch.no_grad():
        fitted = net(X)  # a summed loss that is zero at theta0: caught at the point nearby
    with pytest.raises(ValueError, match="not the mean"):
        from_module(net, lambda out, y: 0.5 * ((out - y) ** 2).sum(), (X, fitted))
    with pytest.raises(ValueError, match="float32 or all float64"):
        from_module(fully_connected(16, (4,), 3).bfloat16(), mse, (X.bfloat16(), Y.bfloat16()))
    frozen = fully_connected(16, (4,), 3).double().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        from_module(frozen, mse, (X, Y))
    with pytest.raises(ValueError, match="not finite"):
        from_module(net, lambda out, y: (out * float("nan")).mean(), (X, Y))

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(zip(X, Y))
    with pytest.raises(ValueError, match="IterableDataset"):
        from_module(net, mse, DataLoader(Stream(), 4))
    with pytest.raises(ValueError, match="drop_last"):
        from_module(net, mse, DataLoader(TensorDataset(X, Y), 5, drop_last=True))


def test_tied_parameters_are_held_once_and_selected_by_any_of_their_names():
    X = torch.randn(10, 6, dtype=F64)
    tied = nn.Sequential(nn.Linear(6, 6).double(), nn.Tanh(), nn.Linear(6, 6).double())
    tied[2].bias = tied[0].bias  # one tensor under two names (as a language model ties its embeddings)
    problem = from_module(tied, mse, (X, X))
    assert problem.names == ["0.weight", "0.bias", "2.weight"] and problem.num_params == 36 + 6 + 36
    assert from_module(tied, mse, (X, X), params="2").names == ["0.bias", "2.weight"]  # 2.bias is 0.bias
    theta = problem.theta0 + 0.1 * random_unit(problem.num_params, 0)
    problem.write_to(theta)  # against the module's own autograd, which sees the tie
    tied.zero_grad()
    mse(tied(X), X).backward()
    expected = torch.cat([tied[0].weight.grad.reshape(-1), tied[0].bias.grad, tied[2].weight.grad.reshape(-1)])
    torch.testing.assert_close(problem.value_and_grad(theta)[1], expected, rtol=1e-12, atol=1e-14)


def test_a_refused_training_mode_leaves_the_module_as_it_was():
    X, Y = images(12, 1, 4)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(),
                        nn.Linear(32, 3)).double()
    with torch.no_grad():
        net[1].running_mean.fill_(0.3)
    net.eval()
    with pytest.raises(ValueError, match="train=False"):
        from_module(net, mse, (X, Y), train=True)
    assert float(net[1].running_mean[0]) == 0.3 and int(net[1].num_batches_tracked) == 0 and not net.training
    flat = nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)).double()
    with pytest.raises(ValueError, match="single example.*train=False"):  # torch's own error, explained
        from_module(flat, mse, (X, Y), train=True)


def test_to_moves_a_loss_that_holds_tensors():
    X, Y = images(10, 1, 4)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.tensor(0.5))

        def forward(self, out, y):
            return self.scale * ((out - y) ** 2).sum(1).mean()

    problem = from_module(fully_connected(16, (4,), 3), Scaled(), (X.float(), Y.float()))
    wide = problem.to(dtype="float64")
    assert wide.loss_fn.scale.dtype == F64 and problem.loss_fn.scale.dtype == torch.float32
    h = eoslab.run(problem, GD(0.1), 3, dtype="float64", progress=False)
    assert np.isfinite(h.loss).all()


def test_to_copies_the_module_and_keeps_the_values():
    X, Y = images(10, 1, 4)
    problem = from_module(convnet(1, 4, (2,), 3, activation="tanh"), mse, (X.float(), Y.float()), chunk_size=3)
    wide = problem.to(dtype="float64")
    assert wide.dtype == F64 and wide.model is not problem.model and problem.dtype == torch.float32
    assert float(wide.loss(wide.theta0)) == pytest.approx(float(problem.loss(problem.theta0)), rel=1e-5)
    assert next(problem.model.parameters()).dtype == torch.float32


def test_architectures_are_seeded_and_leave_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    a, b = vision_transformer(seed=1), vision_transformer(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(resnet(seed=0).parameters()), next(resnet(seed=1).parameters()))
    with torch.no_grad():
        assert math.isfinite(float(vision_transformer()(torch.randn(2, 3, 32, 32)).sum()))


# -- the GPU path ----------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("name", ["cnn", "vit"])
def test_cpu_and_gpu_agree(name, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)  # curvature in true float64
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    X, Y = images(32, 1, 4)
    cpu = from_module(tiny_models()[name], mse, (X, Y), chunk_size=8)
    gpu = from_module(tiny_models()[name].cuda(), mse, (X, Y), chunk_size=8)  # the data stays on the CPU
    assert gpu.device.type == "cuda" and X.device.type == "cpu" and torch.equal(gpu.theta0.cpu(), cpu.theta0)
    v = random_unit(cpu.num_params, 5)
    torch.testing.assert_close(HessianOperator(gpu, gpu.theta0).matvec(v.cuda()).cpu(),
                               HessianOperator(cpu, cpu.theta0).matvec(v), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(top_eigenpairs(gpu, gpu.theta0, k=2, eig_tol=1e-9).values.cpu(),
                               top_eigenpairs(cpu, cpu.theta0, k=2, eig_tol=1e-9).values, rtol=1e-7, atol=0)
    a = eoslab.run(cpu, GD(0.1), 100, measure_every=50, progress=False)
    b = eoslab.run(gpu, GD(0.1), 100, measure_every=50, progress=False)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-9)


def test_torch_layer_norm_in_a_module_makes_third_derivatives_warn_and_ours_is_the_same_function():
    from eoslab.architectures import LayerNorm
    X, Y = images(6, 1, 4)
    torch_norm = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3)).double()
    ours = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), LayerNorm(8), nn.Tanh(), nn.Linear(8, 3)).double()
    ours.load_state_dict(torch_norm.state_dict())
    with torch.no_grad():
        torch_norm[2].weight.uniform_(0.5, 1.5)
        ours[2].weight.copy_(torch_norm[2].weight)
    a, b = from_module(torch_norm, mse, (X, Y)), from_module(ours, mse, (X, Y))
    assert float(a.loss(a.theta0)) == pytest.approx(float(b.loss(b.theta0)), rel=1e-12)
    v = random_unit(a.num_params, 1)
    torch.testing.assert_close(HessianOperator(a, a.theta0).matvec(v), HessianOperator(b, b.theta0).matvec(v))
    with pytest.warns(RuntimeWarning, match="LayerNorm"):
        HessianOperator(a, a.theta0).third_derivative(v)
    assert b.third_derivative_caveat is None
