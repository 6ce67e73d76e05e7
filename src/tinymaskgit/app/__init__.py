"""A web page to try a trained model: ``python -m tinymaskgit.app ckpt=<stage-2 checkpoint>`` (needs ``.[app]``).

``handlers`` holds what the page does as plain functions (no Gradio); ``page`` builds the Gradio page;
``__main__`` reads conf/app.yaml, loads the model once and serves the page.
"""
