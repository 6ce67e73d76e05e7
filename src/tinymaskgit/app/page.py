"""The Gradio page: three tabs (Generate, Inpaint, Compare) wired to the plain functions of ``handlers.py``.

Every handler runs on Gradio's queue (one request at a time by default, ``concurrency`` in conf/app.yaml);
a TinyMaskGITError becomes an error message on the page, never a traceback.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from tinymaskgit.app import handlers as h
from tinymaskgit.errors import TinyMaskGITError
from tinymaskgit.sampling.schedules import SCHEDULES

# pixel art: 64-px images are shown enlarged without smoothing
CSS = "img { image-rendering: pixelated; }"


def shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a TinyMaskGITError of ``fn`` into a message on the page."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TinyMaskGITError as e:
            raise gr.Error(str(e), print_exception=False) from None

    return wrapper


def no_model_page(log_dir: Path) -> gr.Blocks:
    """What the page says when there is no stage-2 checkpoint to load."""
    with gr.Blocks(title="tinymaskgit") as page:
        gr.Markdown(
            f"# tinymaskgit\n\nNo stage-2 (MaskGIT) checkpoint was found under `{log_dir}`.\n\n"
            "Train one with `make demo` (the whole pipeline on generated data, about 13 minutes on 2 CPU cores), "
            "then run `make app` again, or point the page at a checkpoint: "
            '`make app ARGS="ckpt=path/to/maskgit/checkpoints/last.ckpt"`.',
            elem_id="no-model",
        )
    return page


def sampler_widgets(s: h.Session) -> dict[str, Any]:
    """The decoding settings shared by the Generate and Inpaint tabs, starting at the page's config values."""
    d = s.defaults
    return {
        "steps": gr.Slider(1, s.limits.max_steps, value=min(d.steps, s.limits.max_steps), step=1, label="steps T"),
        "schedule": gr.Dropdown(sorted(SCHEDULES), value=d.schedule, label="mask schedule"),
        "cfg_weight": gr.Slider(0.0, 10.0, value=d.cfg_weight, step=0.5, label="CFG weight w"),
        "temperature": gr.Slider(0.0, 10.0, value=d.temperature, step=0.5, label="Gumbel temperature"),
        "token_temperature": gr.Slider(
            0.1, 2.0, value=d.token_temperature, step=0.05, label="token temperature (< 1 sharpens the draw)"
        ),
        "top_k": gr.Number(d.top_k or 0, precision=0, label="top-k codes drawn from (0: all)"),
        "seed": gr.Number(s.seed, precision=0, label="seed"),
        "precision": gr.Radio(["32", "bf16", "auto"], value=str(d.precision), label="precision"),
    }


def generate_tab(s: h.Session) -> None:
    limits = s.limits
    with gr.Row():
        with gr.Column(scale=1):
            cls = gr.Dropdown(s.class_choices, value=s.class_choices[0], label="class")
            n = gr.Slider(1, limits.max_samples, value=min(16, limits.max_samples), step=1, label="samples")
            w = sampler_widgets(s)
            sweet = gr.Number(s.defaults.sweet_spot or 0, precision=0, label="sweet spot t (0: off)")
            ramp = gr.Radio(["constant", "linear"], value=s.defaults.cfg_schedule, label="CFG ramp")
            trace = gr.Number(0, precision=0, label="sample whose steps are shown")
            go = gr.Button("Generate", variant="primary", elem_id="generate-btn")
        with gr.Column(scale=2):
            grid = gr.Image(label="samples", elem_id="gen-grid", interactive=False, format="png")
            info = gr.Markdown(elem_id="gen-info")
            gif = gr.Image(label="decoding steps (animation)", type="filepath", interactive=False, height=300)
            strip = gr.Image(
                label="every step: token mask (black: still masked) above the predicted image", format="png"
            )

    @shown
    def on_generate(cls_, n_, steps, schedule, sweet_, cfg_w, ramp_, temp, token_temp, top_k, seed, precision, trace_):
        values = dict(steps=steps, schedule=schedule, sweet_spot=sweet_, cfg_weight=cfg_w, cfg_schedule=ramp_)
        values.update(temperature=temp, token_temperature=token_temp, top_k=top_k, precision=precision)
        r = h.run_generate(s, cls_, n_, h.page_settings(values, limits.max_steps), seed, int(trace_))
        text = f"{len(r.images)} samples of **{cls_}** in {r.seconds:.2f} s (seed {int(seed)}, T = {int(steps)})"
        return h.enlarge(r.grid, 2), text, str(r.gif), r.strip

    go.click(
        on_generate,
        [
            cls,
            n,
            w["steps"],
            w["schedule"],
            sweet,
            w["cfg_weight"],
            ramp,
            w["temperature"],
            w["token_temperature"],
            w["top_k"],
            w["seed"],
            w["precision"],
            trace,
        ],
        [grid, info, gif, strip],
    )


def inpaint_tab(s: h.Session) -> None:
    limits = s.limits
    with gr.Row():
        with gr.Column(scale=1):
            if len(s.gallery):
                gallery = gr.Gallery(
                    [(img.permute(1, 2, 0).numpy(), c) for img, c in zip(s.gallery, s.captions)],
                    label=f"pick a test image ({s.gallery_note})",
                    columns=6,
                    height=220,
                    allow_preview=False,
                    interactive=False,
                    elem_id="inp-gallery",
                )
            else:
                gr.Markdown(s.gallery_note)
            upload = gr.File(
                label=f"or upload a picture (centre-cropped and resized to {s.size}x{s.size})", elem_id="inp-upload"
            )
            note = gr.Markdown(elem_id="inp-note")
            editor = gr.ImageEditor(
                label="paint the hole with the brush",
                type="numpy",
                sources=(),
                transforms=(),
                layers=False,
                brush=gr.Brush(default_size=24, colors=["#ff00ff"], color_mode="fixed"),
                canvas_size=(s.size * h.DISPLAY, s.size * h.DISPLAY),
                fixed_canvas=True,
                elem_id="inp-editor",
            )
        with gr.Column(scale=1):
            choices = list(dict.fromkeys([h.UNCONDITIONAL, *s.class_choices]))  # the null class first, as the CLI
            cls = gr.Dropdown(choices, value=h.UNCONDITIONAL, label="class (guidance)")
            w = sampler_widgets(s)
            threshold = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label="mask_threshold (token unknown above)")
            go = gr.Button("Inpaint", variant="primary", elem_id="inpaint-btn")
            info = gr.Markdown(elem_id="inp-info")
    with gr.Row():
        masked = gr.Image(label="pixel mask (grey: hole)", format="png", elem_id="inp-masked")
        tokens = gr.Image(label="token mask (black: generated)", format="png")
        result = gr.Image(label="result (known pixels pasted back)", format="png", elem_id="inp-result")
        gif = gr.Image(label="decoding steps (animation)", type="filepath", height=300)
    strip = gr.Image(label="every step", format="png")
    download = gr.DownloadButton("Download the result (PNG)", visible=False)

    if len(s.gallery):

        def on_pick(evt: gr.SelectData):
            return h.canvas(s.gallery[evt.index]), f"test image: {s.captions[evt.index]}"

        gallery.select(on_pick, None, [editor, note])

    @shown
    def on_upload(file):
        if file is None:
            return gr.update(), ""
        image, why = h.read_upload(file if isinstance(file, str) else file.name, s.size)
        return h.canvas(image), f"uploaded {Path(str(file)).name}" + (f": {why}" if why else "")

    upload.upload(on_upload, upload, [editor, note])

    @shown
    def on_inpaint(value, cls_, steps, schedule, cfg_w, temp, token_temp, top_k, seed, precision, thr):
        image, known = h.from_canvas(value, s.size)
        values = dict(steps=steps, schedule=schedule, cfg_weight=cfg_w, temperature=temp, precision=precision)
        values.update(token_temperature=token_temp, top_k=top_k)
        r = h.run_inpaint(s, image, known, h.page_settings(values, limits.max_steps), seed, cls_, thr)
        text = f"{r.unknown_tokens} of {s.model.net.num_tokens} tokens generated in {r.seconds:.2f} s"
        big = h.enlarge
        return (
            big(r.masked),
            big(r.token_mask),
            big(r.result),
            str(r.gif),
            r.strip,
            text,
            gr.update(value=str(r.png), visible=True),
        )

    go.click(
        on_inpaint,
        [
            editor,
            cls,
            w["steps"],
            w["schedule"],
            w["cfg_weight"],
            w["temperature"],
            w["token_temperature"],
            w["top_k"],
            w["seed"],
            w["precision"],
            threshold,
        ],
        [masked, tokens, result, gif, strip, info, download],
    )


def compare_tab(s: h.Session, log_dir: Path, classifier_ckpt: Path | None, root_dir: Path) -> None:
    start = h.newest_sweep(log_dir)
    with gr.Row():
        folder = gr.Textbox(str(start or ""), label="a `make fid-sweep` folder (holds fid_sweep.csv)", scale=4)
        open_btn = gr.Button("Open", scale=1, elem_id="open-sweep-btn")
    info = gr.Markdown(
        "" if start else f"no sweep under `{log_dir}` yet: run `make fid-sweep` or the small one below",
        elem_id="sweep-info",
    )
    table = gr.Dataframe(label="settings, best first", interactive=False, elem_id="sweep-table")
    plot = gr.Image(label="metric against T", format="png")
    with gr.Accordion("Run a small sweep on this checkpoint", open=False):
        limits = s.limits
        schedules = gr.CheckboxGroup(sorted(SCHEDULES), value=["arccos", "cosine"], label="schedules")
        steps = gr.CheckboxGroup([2, 4, 8, 12, 16], value=[8], label="steps T")
        weights = gr.CheckboxGroup([0.0, 1.0, 2.0, 3.0, 5.0], value=[0.0, 2.0], label="CFG weights")
        per = gr.Slider(
            2, limits.sweep_max_per_class, value=min(10, limits.sweep_max_per_class), step=1, label="samples per class"
        )
        backend = gr.Radio(
            ["inception", "classifier"],
            value="inception",
            label="features: inception (the standard FID; ~0.3 s an image on a CPU) or the reference classifier",
            elem_id="sweep-backend",
        )
        clf = gr.Textbox(str(classifier_ckpt or ""), label="reference classifier checkpoint (class accuracy)")
        run_btn = gr.Button(f"Run (at most {limits.sweep_max_runs} combinations)", elem_id="run-sweep-btn")

    @shown
    def on_open(path):
        columns, rows, png = h.read_sweep(path)
        return {"headers": columns, "data": rows}, str(png) if png else None, f"{len(rows)} settings from `{path}`"

    open_btn.click(on_open, folder, [table, plot, info])

    @shown
    def on_run(sched, st, ws, n, feats, clf_path, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        grid = h.sweep_grid(sched, st, ws, limits)
        out = s.out_dir / "sweeps" / time.strftime("%Y-%m-%d_%H-%M-%S")
        report = lambda i, k: progress((i, k), desc="settings evaluated")  # noqa: E731
        h.run_sweep(s, grid, n, clf_path or None, out, root_dir, report, backend=feats)
        return (str(out), *on_open(str(out)))

    run_btn.click(on_run, [schedules, steps, weights, per, backend, clf], [folder, table, plot, info])


def build(
    s: h.Session | None, log_dir: Path, classifier_ckpt: Path | None = None, root_dir: Path | None = None
) -> gr.Blocks:
    """The whole page for a loaded session (or the page that says how to get a model)."""
    if s is None:
        return no_model_page(log_dir)
    names = ", ".join(s.model.class_names) or "none (unconditional)"
    with gr.Blocks(title="tinymaskgit") as page:
        gr.Markdown(
            f"# tinymaskgit\nModel `{s.ckpt}` · {s.size}x{s.size} images, "
            f"{s.model.net.num_tokens} tokens · classes: {names}",
            elem_id="header",
        )
        with gr.Tab("Generate", elem_id="tab-generate"):
            generate_tab(s)
        with gr.Tab("Inpaint", elem_id="tab-inpaint"):
            inpaint_tab(s)
        with gr.Tab("Compare", elem_id="tab-compare"):
            compare_tab(s, log_dir, classifier_ckpt, root_dir or Path.cwd())
    return page
