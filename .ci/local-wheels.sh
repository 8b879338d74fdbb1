# Sourced, not run: `. .ci/local-wheels.sh`. A no-op on an ordinary machine.
# Some machines (our CI's among them) provide the CPU build of torch as a local wheel that pip finds through its
# configuration (PIP_FIND_LINKS) while uv, which ignores pip's configuration, would download a multi-GB CUDA build.
# Point uv at the same local wheels, so that it takes the CPU build the workspace pins (torch==2.13.0).
if [ -z "${UV_FIND_LINKS:-}" ] && [ -n "${PIP_FIND_LINKS:-}" ]; then
    export UV_FIND_LINKS="$PIP_FIND_LINKS"
fi
