"""ferhub web app (also the Hugging Face Space entry point): ``python app.py`` serves it on 127.0.0.1:7860.

Host and port follow Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT environment variables; what visitors may
reach and how much disk the server keeps follow the settings in ``ferhub.ui.visitors`` and
``ferhub.ui.scratch`` (README, "The app as a public Space"). The set-up lives in ``ferhub.ui.server``, which
``ferhub app`` (an installed package, no checkout) runs too. Ctrl-C or SIGTERM (a Space stopped, ``docker
stop``) stops it, at start-up or while it serves, and removes its files; it exits 130 after Ctrl-C, 143 after
SIGTERM, as a shell reports a process that signal ends.
"""

import sys

from ferhub.ui import server

demo = server.create_app()  # gives Gradio this server's own upload folder before importing it

if __name__ == "__main__":
    sys.exit(server.serve(demo))
