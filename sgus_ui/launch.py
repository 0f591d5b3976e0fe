"""Start Streamlit on ``streamlit_app.py`` with multipage routing owned by ``st.navigation``.

Streamlit treats a ``pages/`` folder beside the entrypoint as its legacy (v1) page registry until
the first ``st.navigation`` call, so the very first run of a fresh server (or a direct link such as
``/annotate``) executed the page file without the router: no shared sidebar, the raw file list as
navigation. The project keeps its ``pages/`` layout and switches the legacy mode off before the
server starts. Usage: ``python -m sgus_ui.launch [streamlit run options...]``.
"""

from __future__ import annotations

import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

from sgus_core.settings import REPO_ROOT


def main() -> None:
    """Run ``streamlit run streamlit_app.py`` with the given options in this process."""
    PagesManager.uses_pages_directory = False  # st.navigation is the only page registry
    sys.argv = ["streamlit", "run", str(REPO_ROOT / "streamlit_app.py"), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
