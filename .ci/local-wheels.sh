# Sourced, not run: `. .ci/local-wheels.sh`. A no-op on an ordinary machine.
# Some machines (our CI's among them) provide the CPU build of torch as a local wheel that pip finds through its
# configuration (PIP_FIND_LINKS, or find-links in pip.conf) while uv, which ignores pip's configuration, would
# download a multi-GB CUDA build. Point uv at the same local wheels, so that it takes the CPU build the workspace
# pins (torch==2.13.0).
if [ -z "${UV_FIND_LINKS:-}" ]; then
    _links="${PIP_FIND_LINKS:-$(python3 -m pip config get global.find-links 2>/dev/null || true)}"
    if [ -n "$_links" ]; then
        export UV_FIND_LINKS="$_links"
    fi
    unset _links
fi
