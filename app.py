"""ferhub web app (also the Hugging Face Space entry point): ``python app.py`` serves it on 127.0.0.1:7860.

Host and port follow Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT environment variables; what visitors may
reach and how much disk the server keeps follow the settings in ``ferhub.ui.visitors`` and
``ferhub.ui.scratch`` (README, "The app as a public Space").
"""

import signal

from ferhub.ui import scratch

# before Gradio is imported (it reads the folder then): uploads and served outputs in a folder of this
# server's own, capped and removed at exit, instead of the /tmp/gradio every app on the machine shares
scratch.own_gradio_cache()

from ferhub.ui import build_app, launch_kwargs, state  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    # a stopped Space gets SIGTERM: close the server and remove its files as on Ctrl-C
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    state.tune_native_memory()  # a long-running server: keep its memory from creeping after load bursts
    scratch.start_sweeper(demo)
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    state.start_warm_up()  # first-request costs paid in the background once the server answers
    demo.block_thread()
