#!/usr/bin/env python3
"""Runs the PyTorch conv peer (peer_convvae_torch.py, imported unmodified) as
its main() does for one seed, and writes out every random draw it takes, so
that govae can replay them (experiments/convpaired):

  init.json, init.f32   the initial weights under govae's names and shapes
                        (a dense weight transposed to (in, out)), float32 in
                        the manifest's order
  train_x.bits          each step's binarized batch, rows in the order used,
                        epoch after epoch (np.packbits of 784 pixels, 98 bytes)
  train_eps.f32         each training row's reparameterization noise (z floats)
  test_x.bits           the peer's fixed binarization of the test images
  test_eps.f32          each epoch's evaluation noise, test image after image
  step_loss.f64         each step's loss divided by its rows (mean negative ELBO)
  log_px.f64            with --iwae-k, the peer's log p(x) estimate of each of
                        the first --iwae-n test images (its iwae_log_px)

and prints the peer's epoch lines. The draws come from the same generators in
the same order as in the peer's main(), so its numbers are the peer's own.

With --float64 the model, its Adam and every computation are in float64
from the same float32 initial weights, batches and noise (drawn in float32
as above and widened), so a float64 replay can tell arithmetic from
implementation.
"""
import argparse, importlib.util, json, os, time
import numpy as np
import torch

# govae's parameter names for the peer's modules
NAMES = [("c1", "encoder.conv0"), ("c2", "encoder.conv1"), ("f1", "encoder.dense.0"), ("mu", "encoder.mean"),
         ("lv", "encoder.logvar"), ("g1", "decoder.dense.0"), ("g2", "decoder.dense.1"),
         ("d1", "decoder.deconv0"), ("d2", "decoder.logits")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, help="path of peer_convvae_torch.py")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-n", type=int, default=0, help="first n training images (0: all, as the peer)")
    ap.add_argument("--test-n", type=int, default=0, help="first n test images (0: all, as the peer)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps, no evaluation (0: none)")
    ap.add_argument("--iwae-k", type=int, default=0, help="after training, log p(x) with this many samples (0: none)")
    ap.add_argument("--iwae-n", type=int, default=1000, help="test images for log p(x)")
    ap.add_argument("--float64", action="store_true", help="train and evaluate in float64 (draws stay float32)")
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("peer_convvae_torch", a.peer)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    os.makedirs(a.out, exist_ok=True)
    out = lambda name: open(os.path.join(a.out, name), "wb")

    # As the peer's main(), in the same order.
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = np.random.default_rng(a.seed)
    xtr = torch.from_numpy(peer.read_idx(a.data + "/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    xte = torch.from_numpy(peer.read_idx(a.data + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    if a.train_n > 0:
        xtr = xtr[:a.train_n]
    if a.test_n > 0:
        xte = xte[:a.test_n]
    xte_b = torch.bernoulli(xte, generator=torch.Generator().manual_seed(0))
    m = peer.ConvVAE(a.latent)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)

    manifest, blobs = [], []
    for attr, name in NAMES:
        mod = getattr(m, attr)
        for kind in ("weight", "bias"):
            v = getattr(mod, kind).detach()
            if isinstance(mod, torch.nn.Linear) and kind == "weight":
                v = v.t()
            v = v.contiguous().numpy().astype(np.float32)
            manifest.append({"name": name + "." + kind, "shape": list(v.shape)})
            blobs.append(v.ravel())
    with open(os.path.join(a.out, "init.json"), "w") as f:
        json.dump(manifest, f)
    with out("init.f32") as f:
        np.concatenate(blobs).astype("<f4").tofile(f)
    if a.float64:
        m.double()  # in place, after the float32 initial weights were written: the same values, the same Adam
    wide = (lambda x: x.double()) if a.float64 else (lambda x: x)
    with out("test_x.bits") as f:
        np.packbits(xte_b.numpy().astype(np.uint8), axis=1).tofile(f)

    def forward(x):  # the peer's ConvVAE.forward, keeping its noise
        mu, logvar = m.encode(x)
        eps = torch.randn(mu.shape).to(mu.dtype) if a.float64 else torch.randn_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)
        return m.decode(z), mu, logvar, eps

    fx, feps, fte, floss = out("train_x.bits"), out("train_eps.f32"), out("test_eps.f32"), out("step_loss.f64")
    n, step = xtr.shape[0], 0
    for ep in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        m.train(); tot = 0.0
        perm = torch.from_numpy(g.permutation(n))
        for i in range(0, n, a.batch):
            xb = torch.bernoulli(xtr[perm[i:i + a.batch]])
            opt.zero_grad()
            logits, mu, logvar, eps = forward(wide(xb))
            loss = peer.neg_elbo(logits, wide(xb), mu, logvar)
            loss.backward(); opt.step(); tot += loss.item()
            np.packbits(xb.numpy().astype(np.uint8), axis=1).tofile(fx)
            eps.numpy().astype("<f4").tofile(feps)  # exact: drawn in float32
            np.array([loss.item() / xb.shape[0]], dtype="<f8").tofile(floss)
            step += 1
            if step == a.max_steps:
                for f in (fx, feps, fte, floss):
                    f.close()
                return
        dt = time.perf_counter() - t0
        m.eval(); te = 0.0
        with torch.no_grad():
            for i in range(0, xte_b.shape[0], 1000):
                xb = wide(xte_b[i:i + 1000])
                logits, mu, logvar, eps = forward(xb)
                te += peer.neg_elbo(logits, xb, mu, logvar).item()
                eps.numpy().astype("<f4").tofile(fte)
        print(json.dumps({"epoch": ep, "train_seconds": round(dt, 3), "images_per_s": round(n / dt, 1),
                          "train_elbo": round(-tot / n, 3), "test_elbo": -te / xte_b.shape[0],  # unrounded: the pairs compare it closely
                          "threads": a.threads}), flush=True)
    for f in (fx, feps, fte, floss):
        f.close()
    if a.iwae_k > 0:  # as the peer's main(), keeping each image's estimate
        t0 = time.perf_counter()
        xs = wide(xte_b[:a.iwae_n])
        lp = torch.cat([peer.iwae_log_px(m, xs[i:i + 50], a.iwae_k) for i in range(0, xs.shape[0], 50)])
        with out("log_px.f64") as f:
            lp.double().numpy().astype("<f8").tofile(f)
        print(json.dumps({"test_log_px": lp.mean().item(), "k": a.iwae_k, "n": xs.shape[0],
                          "eval_seconds": round(time.perf_counter() - t0, 3)}), flush=True)


if __name__ == "__main__":
    main()
