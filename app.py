"""ferhub web app (also the Hugging Face Space entry point): ``python app.py`` serves it on 127.0.0.1:7860.

Host and port follow Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT environment variables.
"""

from ferhub.ui import build_app, launch_kwargs, state

demo = build_app()

if __name__ == "__main__":
    state.tune_native_memory()  # a long-running server: keep its memory from creeping after load bursts
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, **launch_kwargs())
    state.start_warm_up()  # first-request costs paid in the background once the server answers
    demo.block_thread()
