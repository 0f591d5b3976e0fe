"""Start Streamlit on ``streamlit_app.py`` with multipage routing owned by ``st.navigation``.

Streamlit treats a ``pages/`` folder beside the entrypoint as its legacy (v1) page registry until
the first ``st.navigation`` call, so the very first run of a fresh server (or a direct link such as
``/annotate``) executed the page file without the router: no shared sidebar, the raw file list as
navigation. The project keeps its ``pages/`` layout and switches the legacy mode off before the
server starts. Usage: ``python -m sgus_ui.launch [streamlit run options...]``.
"""

from __future__ import annotations

import os
import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

from sgus_core.settings import REPO_ROOT

# Streamlit settings of a clinic's app rather than a developer's: no Deploy button, no watching
# of the source tree for edits (a busy watcher on the venv overflowed inotify), and no log line
# when the Annotate page keeps a widget's value across pages on purpose. A user's own
# variables win.
APP_SETTINGS = {
    "STREAMLIT_CLIENT_TOOLBAR_MODE": "viewer",
    "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    "STREAMLIT_GLOBAL_DISABLE_WIDGET_STATE_DUPLICATION_WARNING": "true",
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's start-up chatter stays out of the log
}


def main() -> None:
    """Run ``streamlit run streamlit_app.py`` with the given options in this process."""
    for key, value in APP_SETTINGS.items():
        os.environ.setdefault(key, value)
    PagesManager.uses_pages_directory = False  # st.navigation is the only page registry
    sys.argv = ["streamlit", "run", str(REPO_ROOT / "streamlit_app.py"), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
