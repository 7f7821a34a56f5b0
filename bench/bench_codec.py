"""Audio encode/decode speed on CPU against EnCodec (24 kHz, 6 kbit/s), and peak memory on long files.

    python bench/bench_codec.py [--minutes 10 60] [--repeats 5] [--seconds 30] [--model PATH] [--no-peer]
                                [--system-allocator]

The model is the default audio configuration (16 kHz, hop 320; one training step, since speed does not
depend on the weights), or the trained audio model ``--model PATH`` (e.g. an 8 kHz speech model). The
peer is EnCodec's 24 kHz architecture from the PyPI package ``encodec`` (``pip install encodec``), built
without downloading its weights (random weights: speed does not depend on them), set to 6 kbit/s (8
codebooks). Both code the same real speech (the shipped samples, resampled by vqtok's loader to each
model's rate, repeated to ``--seconds``) on the CPU with the default torch threads.

Speed is seconds of audio per second of wall time, median of ``--repeats`` after one warm-up on a short
clip; the repeats of all rows are interleaved, so load from other processes falls on every row alike.
Rows: vqtok through the file API (``encode_file`` / ``decode_to_file``: streamed in chunks of 2**17
samples, WAV read and written), vqtok on a tensor in one call (``encode_tensor`` / ``decode_tensor``),
EnCodec on a tensor in one call (``model.encode`` / ``model.decode`` under ``torch.no_grad``, as its own
API does at 24 kHz), and EnCodec in segments of as many samples as our chunks (2**17: 5.46 s; its own
``segment`` overlap-add, as its 48 kHz model uses; not bit-exact for the causal 24 kHz model, but the
like-for-like cost of bounded working memory). Ratios are ours / EnCodec, file against segments and
tensor against tensor (above 1: ours is faster); one long call runs about half as fast per second of
audio as cache-sized chunks, for both models. Every row runs with the allocator settings the vqtok CLI
applies (:mod:`vqtok.allocator`), unless ``--system-allocator``.

GFLOP per second of audio: convolutions and matmuls counted by ``torch.utils.flop_counter``, plus LSTM
gate matmuls counted from their shapes (EnCodec's two-layer 512-unit LSTMs, one in the encoder and one
in the decoder: 0.63 GFLOP per second of audio each). Achieved GFLOP/s is that times the speed.

On a shared machine the load average is printed before and after the timings: with more runnable
processes than cores, torch's OpenMP threads wait on one another and the timings lose their meaning
(EnCodec suffers most: one call on 8-10 s clips was seen at 0.5x real time at load 6, 19x at load 1.5).

Peak memory is the maximum resident set size of a separate ``vqtok encode`` / ``vqtok decode`` process per
file, so the figures for 10 and 60 minutes can be compared: bounded memory means they are about equal.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
from common import allocator_option, apply_allocator, default_model, speech_clip, speech_recording
from torch.utils.flop_counter import FlopCounterMode

import vqtok
from vqtok.codec.long_inputs import CHUNK_SAMPLES

PEER_RATE = 24000
PEER_KBPS = 6.0
WARMUP_SECONDS = 4.0
AIM = 100.0  # the default audio model's aim: this many seconds of audio per second on 2 CPU cores


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Peak RSS of ``cmd`` in MB, measured in a fresh parent so no earlier child counts, and its wall time."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024, time.perf_counter() - t


def interleaved_medians(ops: dict[str, tuple], repeats: int) -> dict[str, float]:
    """``ops``: name -> (warm-up callable, timed callable). Each warms up once, then the timed callables
    run in turn ``repeats`` times; the median seconds of each."""
    for warm, _ in ops.values():
        warm()
    times: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, (_, fn) in ops.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def lstm_flops(module: torch.nn.LSTM, inputs) -> int:
    """Multiply-adds x 2 of an LSTM's gate matmuls (``FlopCounterMode`` does not see the fused CPU kernel)."""
    x = inputs[0]
    steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
    h, i, total = module.hidden_size, module.input_size, 0
    for layer in range(module.num_layers):
        total += 2 * 4 * h * ((i if layer == 0 else h * (1 + module.bidirectional)) + h) * (1 + module.bidirectional)
    return total * steps


def gflop(fn, model: torch.nn.Module) -> float:
    """GFLOP of ``fn()``: convolutions and matmuls by ``FlopCounterMode``, plus ``model``'s LSTMs."""
    counted = []
    hooks = [
        m.register_forward_hook(lambda m, inp, out: counted.append(lstm_flops(m, inp)))
        for m in model.modules()
        if isinstance(m, torch.nn.LSTM)
    ]
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for hook in hooks:
            hook.remove()
    return (counter.get_total_flops() + sum(counted)) / 1e9


def encodec_peer():
    """EnCodec's causal 24 kHz model (random weights) at 6 kbit/s, or None when ``encodec`` is missing."""
    try:
        from encodec import EncodecModel
    except ImportError:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.nn.utils.weight_norm, as the package uses it
        model = EncodecModel._get_model(
            [1.5, 3.0, 6.0, 12.0, 24.0],
            PEER_RATE,
            1,
            causal=True,
            model_norm="weight_norm",
            audio_normalize=False,
            name="my_encodec_24khz",
        )
    model.set_target_bandwidth(PEER_KBPS)
    with torch.no_grad():  # the codebooks start as zeros awaiting k-means: give them distinct entries
        for layer in model.quantizer.vq.layers:
            layer._codebook.embed.normal_()
            layer._codebook.inited.fill_(1.0)
    return model.eval()


def describe(tok, path: Path, default: bool) -> tuple[int, str]:
    sr = tok.config.options.sample_rate
    params = sum(p.numel() for p in tok.model.parameters())
    bits = sum(sr / s.hop * sum(math.log2(k) for k in s.codebook_sizes) for s in tok.specs.values() if s.discrete)
    latents = ", ".join(f"{name} {s.depth} x {sr / s.hop:g}/s" for name, s in tok.specs.items())
    what = "default audio model (1 training step)" if default else f"model {path}"
    rate = f"{bits:,.0f} bit/s" if bits else "continuous latents"
    return sr, (f"{what}: {tok.family}, {sr} Hz, hop {tok.hop}, {params:,} parameters, latents {latents}, {rate}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--minutes",
        type=float,
        nargs="*",
        default=[10, 60],
        help="lengths of the peak-memory files (none: skip that part)",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the speech the speed is measured on")
    ap.add_argument("--model", type=Path, help="a trained vqtok audio model (default: the default configuration)")
    ap.add_argument("--no-peer", action="store_true", help="skip EnCodec")
    allocator_option(ap)
    args = ap.parse_args()
    started = time.perf_counter()
    print(apply_allocator(args))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model or default_model("audio", tmp)
        tok = vqtok.load(model)
        if tok.modality.name != "audio":
            sys.exit(f"{model}: a {tok.modality.name} model; bench_codec measures audio models")
        sr, line = describe(tok, model, args.model is None)
        print(line)
        label = tok.label_names[0] if tok.model.conditional else None
        labels = tok.labels(label)
        if label is not None:
            print(f"conditional model: coding with label {label!r}")

        # ---- the same speech for every row ----
        x = torch.from_numpy(speech_clip(args.seconds, sr))[None]
        x_warm = x[:, : int(WARMUP_SECONDS * sr)]
        wav, wav_warm = tmp / "speed.wav", tmp / "warm.wav"
        sf.write(wav, x[0].numpy(), sr, subtype="PCM_16")
        sf.write(wav_warm, x_warm[0].numpy(), sr, subtype="PCM_16")
        seconds = x.shape[-1] / sr
        cf, cf_warm = tok.encode_file(wav, label=label), tok.encode_file(wav_warm, label=label)
        lat, lat_warm = tok.encode_tensor(x, labels=labels), tok.encode_tensor(x_warm, labels=labels)
        ops = {
            ("vqtok", "file", "encode"): (
                lambda: tok.encode_file(wav_warm, label=label),
                lambda: tok.encode_file(wav, label=label),
            ),
            ("vqtok", "file", "decode"): (
                lambda: tok.decode_to_file(cf_warm, tmp / "back.wav", label=label),
                lambda: tok.decode_to_file(cf, tmp / "back.wav", label=label),
            ),
            ("vqtok", "tensor", "encode"): (
                lambda: tok.encode_tensor(x_warm, labels=labels),
                lambda: tok.encode_tensor(x, labels=labels),
            ),
            ("vqtok", "tensor", "decode"): (
                lambda: tok.decode_tensor(lat_warm, labels),
                lambda: tok.decode_tensor(lat, labels),
            ),
        }
        one_second = x[:, :sr]
        lat_one = tok.encode_tensor(one_second, labels=labels)
        flops = {
            ("vqtok", "encode"): gflop(lambda: tok.encode_tensor(one_second, labels=labels), tok.model),
            ("vqtok", "decode"): gflop(lambda: tok.decode_tensor(lat_one, labels), tok.model),
        }
        peer = None if args.no_peer else encodec_peer()
        if peer is None and not args.no_peer:
            print("EnCodec peer skipped: `pip install encodec` to compare")
        if peer is not None:
            segment = CHUNK_SAMPLES / PEER_RATE  # as many samples as one of our streaming chunks
            y = torch.from_numpy(speech_clip(args.seconds, PEER_RATE))[None, None]
            y_warm = y[..., : int(WARMUP_SECONDS * PEER_RATE)]
            with torch.no_grad():
                frames, frames_warm = peer.encode(y), peer.encode(y_warm)
                assert frames[0][0].shape[1] == round(PEER_KBPS * 1000 / (10 * peer.frame_rate))  # 8 codebooks
                assert peer.decode(frames).shape[-1] >= y.shape[-1]
                frames_one = peer.encode(y[..., :PEER_RATE])
                flops[("EnCodec", "encode")] = gflop(lambda: peer.encode(y[..., :PEER_RATE]), peer)
                flops[("EnCodec", "decode")] = gflop(lambda: peer.decode(frames_one), peer)

                peer.segment = segment
                seg_frames, seg_frames_warm = peer.encode(y), peer.encode(y_warm)
                assert peer.decode(seg_frames).shape[-1] >= y.shape[-1]
                peer.segment = None

            def run(fn, segment=None):
                def go():
                    peer.segment = segment
                    with torch.no_grad():
                        return fn()

                return go

            ops[("EnCodec", "tensor", "encode")] = (run(lambda: peer.encode(y_warm)), run(lambda: peer.encode(y)))
            ops[("EnCodec", "tensor", "decode")] = (
                run(lambda: peer.decode(frames_warm)),
                run(lambda: peer.decode(frames)),
            )
            ops[("EnCodec", "segments", "encode")] = (
                run(lambda: peer.encode(y_warm), segment),
                run(lambda: peer.encode(y), segment),
            )
            ops[("EnCodec", "segments", "decode")] = (
                run(lambda: peer.decode(seg_frames_warm), segment),
                run(lambda: peer.decode(seg_frames), segment),
            )
            print(
                f"peer: EnCodec 24 kHz architecture (PyPI encodec, random weights), causal, weight_norm, "
                f"{PEER_RATE} Hz, hop {peer.encoder.hop_length}, {sum(p.numel() for p in peer.parameters()):,} "
                f"parameters, {PEER_KBPS:g} kbit/s = {len(frames[0][0][0])} codebooks x {peer.frame_rate}/s; "
                f"segments: its own overlap-add, {segment:.3f} s with {peer.overlap:.0%} overlap"
            )

        t, load_before = time.perf_counter(), os.getloadavg()[0]
        med = interleaved_medians(ops, args.repeats)
        load_after = os.getloadavg()[0]
        print(
            f"\nspeed on {seconds:g} s of speech (median of {args.repeats}, interleaved, after a "
            f"{WARMUP_SECONDS:g} s warm-up; took {time.perf_counter() - t:.0f} s; 1-minute load average "
            f"{load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs)"
        )
        if max(load_before, load_after) > (os.cpu_count() or 1):
            print(
                "warning: more runnable processes than CPUs during the timings: figures are unreliable, "
                "EnCodec's most of all"
            )
        print(
            f"{'model':<9}{'path':<8}{'encode xRT':>12}{'decode xRT':>12}{'GFLOP per s of audio':>24}"
            f"{'achieved GFLOP/s':>20}"
        )
        print(f"{'':<41}{'enc':>10}{'dec':>10}{'enc':>10}{'dec':>10}")
        speed = {key: seconds / s for key, s in med.items()}
        for who, how in [("vqtok", "file"), ("vqtok", "tensor"), ("EnCodec", "tensor"), ("EnCodec", "segments")]:
            if (who, how, "encode") not in speed:
                continue
            enc, dec = speed[(who, how, "encode")], speed[(who, how, "decode")]
            f_enc, f_dec = flops[(who, "encode")], flops[(who, "decode")]
            print(
                f"{who:<9}{how:<8}{enc:>12.1f}{dec:>12.1f}{'':>4}{f_enc:>10.2f}{f_dec:>10.2f}"
                f"{f_enc * enc:>10.1f}{f_dec * dec:>10.1f}"
            )
        if peer is not None:
            for ours, theirs in (("file", "segments"), ("tensor", "tensor")):
                r_enc = speed[("vqtok", ours, "encode")] / speed[("EnCodec", theirs, "encode")]
                r_dec = speed[("vqtok", ours, "decode")] / speed[("EnCodec", theirs, "decode")]
                print(f"ratio ours ({ours}) / EnCodec ({theirs}): encode {r_enc:.2f}x, decode {r_dec:.2f}x")
        if args.model is None:
            enc, dec = speed[("vqtok", "file", "encode")], speed[("vqtok", "file", "decode")]
            verdict = "met" if min(enc, dec) >= AIM else "NOT met"
            print(
                f"aim {AIM:g}x real time on 2 cores (default model, file API): encode {enc:.1f}x, "
                f"decode {dec:.1f}x: {verdict} on this machine ({os.cpu_count()} CPUs, "
                f"{torch.get_num_threads()} threads)"
            )

        # ---- peak memory on long files ----
        if args.minutes:
            print(
                f"\n{'file':>10}{'peak RSS encode (MB)':>24}{'peak RSS decode (MB)':>24}"
                f"{'encode wall s':>16}{'decode wall s':>16}"
            )
        extra = ["--label", label] if label is not None else []
        for minutes in args.minutes:
            long = speech_recording(tmp / f"long-{minutes:g}.wav", minutes, sr)
            npz = tmp / f"long-{minutes:g}.npz"
            enc_mb, enc_s = peak_rss_mb(
                [sys.executable, "-m", "vqtok", "encode", "--model", str(model), str(long), "-o", str(npz), *extra]
            )
            dec_mb, dec_s = peak_rss_mb(
                [
                    sys.executable,
                    "-m",
                    "vqtok",
                    "decode",
                    "--model",
                    str(model),
                    str(npz),
                    "-o",
                    str(tmp / "long-back.wav"),
                    *extra,
                ]
            )
            assert sf.info(tmp / "long-back.wav").frames == sf.info(long).frames
            print(f"{minutes:>8g} m{enc_mb:>24.0f}{dec_mb:>24.0f}{enc_s:>16.0f}{dec_s:>16.0f}")
            long.unlink()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
