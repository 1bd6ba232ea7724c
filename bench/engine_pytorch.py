"""PyTorch side of `npm run bench:engine`: the same 2D U-Net, batch and timing as bench/engine.ts.

Run with Debian's /usr/bin/python3 (python3-torch). After warm-up it prints "ready <json>", then
answers each stdin line "train N" / "infer N" with the seconds N iterations took, so the Node
side can alternate short rounds of both engines (fair when the machine is shared).
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def main():
    threads, batch, size, warmup = (int(a) for a in sys.argv[1:5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    levels = [16, 32, 64, 128]

    params = []

    def conv_w(cout, cin, k):
        w = (torch.randn(cout, cin, k, k) * math.sqrt(2.0 / (cin * k * k))).requires_grad_()
        params.append(w)
        return w

    def vec(n, v):
        t = torch.full((n,), float(v)).requires_grad_()
        params.append(t)
        return t

    def block(cin, cout):
        return {
            "w1": conv_w(cout, cin, 3), "g1": vec(cout, 1), "b1": vec(cout, 0),
            "m1": torch.zeros(cout), "v1": torch.ones(cout),
            "w2": conv_w(cout, cout, 3), "g2": vec(cout, 1), "b2": vec(cout, 0),
            "m2": torch.zeros(cout), "v2": torch.ones(cout),
        }

    enc = []
    cin = 1
    for c in levels:
        enc.append(block(cin, c))
        cin = c
    ups, dec = [], []
    for i in range(len(levels) - 1, 0, -1):
        c_hi, c_lo = levels[i], levels[i - 1]
        w = (torch.randn(c_hi, c_lo, 2, 2) * math.sqrt(2.0 / (c_hi * 4))).requires_grad_()
        params.append(w)
        ups.append({"w": w, "b": vec(c_lo, 0)})
        dec.append(block(2 * c_lo, c_lo))
    head_w = conv_w(1, levels[0], 1)
    head_b = vec(1, 0)

    def run_block(x, p, training):
        x = F.conv2d(x, p["w1"], None, padding=1)
        x = F.relu(F.batch_norm(x, p["m1"], p["v1"], p["g1"], p["b1"], training, 0.1, 1e-5))
        x = F.conv2d(x, p["w2"], None, padding=1)
        return F.relu(F.batch_norm(x, p["m2"], p["v2"], p["g2"], p["b2"], training, 0.1, 1e-5))

    def forward(x, training):
        skips = []
        for i, p in enumerate(enc):
            x = run_block(x, p, training)
            if i < len(enc) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for u, d in zip(ups, dec):
            x = F.conv_transpose2d(x, u["w"], u["b"], stride=2)
            x = torch.cat([x, skips.pop()], 1)
            x = run_block(x, d, training)
        return F.conv2d(x, head_w, head_b)

    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.randn(batch, 1, size, size)
    target = (torch.rand(batch, 1, size, size) > 0.5).float()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(forward(x, True), target)
        loss.backward()
        opt.step()
        return loss

    def infer():
        with torch.no_grad():
            return forward(x, False)

    for _ in range(warmup):
        train_step()
        infer()
    print("ready " + json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        what, n = line.split()
        fn = train_step if what == "train" else infer
        t0 = time.perf_counter()
        for _ in range(int(n)):
            fn()
        print(time.perf_counter() - t0, flush=True)


if __name__ == "__main__":
    main()
