#!/usr/bin/python3
"""Baseline: render a random Farris-wheel "spirograph" animation the way
a typical matplotlib user would (FuncAnimation + FFMpegWriter), and time it.

Curve:  z(t) = sum_j a_j * exp(i * (n_j * t + phi_j)),  t in [0, 2*pi]
with every n_j congruent to CONG modulo KFOLD (gives KFOLD-fold symmetry
when gcd(CONG, KFOLD) == 1).

Each frame shows the curve traced so far (one Line2D) plus the wheels at the
current t: one circle per wheel centred on the partial sum of the previous
wheels, the links between the centres, and the pen.

Prints exactly one line of JSON on stdout at the end:
  {"frames":..,"width":..,"height":..,"seconds":..,"fps_rendered":..,"bytes":..}
"seconds" covers figure construction + FuncAnimation.save() (i.e. the work a
long-lived WSGI worker would do per request; the matplotlib import is not
counted, it is reported separately as "import_seconds").

Must be run with the Debian python (/usr/bin/python3) so that it sees
python3-matplotlib / python3-numpy.
"""
import argparse
import json
import math
import os
import sys
import time

_t_import0 = time.perf_counter()
import numpy as np  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.animation import FuncAnimation, FFMpegWriter  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _t_import0


def random_farris(wheels, kfold, cong, rng):
    """Return (n, a) with n_j = cong + kfold*m_j (distinct, non-zero) and complex a_j."""
    span = max(3, wheels // 2 + 3)
    cand = [cong + kfold * m for m in range(-span, span + 1)]
    cand = [n for n in cand if n != 0]
    if len(cand) < wheels:
        raise SystemExit("not enough distinct frequencies")
    n = rng.choice(np.array(cand), size=wheels, replace=False)
    # amplitudes decay with |n| so the curve is smooth but still lobed
    mag = rng.uniform(0.35, 1.0, size=wheels) / np.abs(n) ** 0.9
    phi = rng.uniform(0.0, 2.0 * math.pi, size=wheels)
    mag = mag / mag.sum()  # total reach == 1
    order = np.argsort(-mag)  # biggest wheel first, anchored at the origin
    return n[order], (mag * np.exp(1j * phi))[order]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheels", type=int, default=12)
    ap.add_argument("--kfold", type=int, default=3)
    ap.add_argument("--cong", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--steps", type=int, default=8,
                    help="curve samples per frame for the traced line")
    ap.add_argument("--bg", choices=["black", "white"], default="black")
    ap.add_argument("--out", default="spiro.mp4")
    ap.add_argument("--draw-only", action="store_true",
                    help="render frames to RGBA in memory, no ffmpeg (timing breakdown)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    n, a = random_farris(args.wheels, args.kfold, args.cong, rng)

    # full curve, sampled finely; frame i shows samples [0, idx_i]
    total = args.frames * args.steps
    ts = np.linspace(0.0, 2.0 * math.pi, total + 1)
    z = (a[None, :] * np.exp(1j * np.outer(ts, n))).sum(axis=1)
    frame_t_idx = np.linspace(0, total, args.frames).round().astype(int)

    # fit the view to the reach of the wheels over the whole period
    cent = np.concatenate(
        (np.zeros((args.frames, 1), complex),
         np.cumsum(a[None, :] * np.exp(1j * np.outer(ts[frame_t_idx], n)), axis=1)),
        axis=1)
    lim = 1.05 * float(np.max(np.abs(cent[:, :-1]) + np.abs(a)[None, :]))

    fg = "white" if args.bg == "black" else "black"
    fig = plt.figure(figsize=(8, 8), dpi=90, facecolor=args.bg)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_facecolor(args.bg)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axis("off")

    (trace,) = ax.plot([], [], color="#33b5ff", lw=1.5)
    circles = []
    for amp in np.abs(a):
        c = Circle((0, 0), amp, fill=False, color=fg, lw=0.7, alpha=0.45)
        ax.add_patch(c)
        circles.append(c)
    (links,) = ax.plot([], [], color=fg, lw=0.9, alpha=0.8, marker="o", ms=2)
    (pen,) = ax.plot([], [], "o", color="#ff4060", ms=5)

    def update(i):
        k = frame_t_idx[i]
        t = ts[k]
        trace.set_data(z[: k + 1].real, z[: k + 1].imag)
        terms = a * np.exp(1j * n * t)
        centres = np.concatenate(([0j], np.cumsum(terms)))
        for j, c in enumerate(circles):
            c.center = (centres[j].real, centres[j].imag)
        links.set_data(centres.real, centres.imag)
        pen.set_data([centres[-1].real], [centres[-1].imag])
        return [trace, links, pen, *circles]

    if args.draw_only:
        # same per-frame work as FuncAnimation.save(): update, the
        # draw_idle() of _post_draw (a full draw on Agg), then
        # FFMpegWriter.grab_frame's savefig to raw RGBA -- but the bytes go
        # nowhere and no ffmpeg runs: isolates matplotlib's share
        import io
        for i in range(args.frames):
            update(i)
            fig.canvas.draw_idle()
            buf = io.BytesIO()
            fig.savefig(buf, format="rgba", dpi=90)
        seconds = time.perf_counter() - t0
        w, h = fig.canvas.get_width_height()
        print(json.dumps({"frames": args.frames, "width": int(w), "height": int(h),
                          "seconds": round(seconds, 3),
                          "fps_rendered": round(args.frames / seconds, 2),
                          "bytes": 0, "draw_only": True, "seed": args.seed}))
        return

    anim = FuncAnimation(fig, update, frames=args.frames,
                         interval=1000.0 / args.fps, blit=True)
    writer = FFMpegWriter(fps=args.fps, codec="libx264",
                          extra_args=["-pix_fmt", "yuv420p"])
    anim.save(args.out, writer=writer, dpi=90)
    seconds = time.perf_counter() - t0
    w, h = fig.canvas.get_width_height()
    plt.close(fig)

    print(json.dumps({
        "frames": args.frames,
        "width": int(w),
        "height": int(h),
        "seconds": round(seconds, 3),
        "fps_rendered": round(args.frames / seconds, 2),
        "bytes": os.path.getsize(args.out),
        "import_seconds": round(IMPORT_SECONDS, 3),
        "seed": args.seed, "wheels": args.wheels,
        "kfold": args.kfold, "cong": args.cong,
        "n": [int(x) for x in n],
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
