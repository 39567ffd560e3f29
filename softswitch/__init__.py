# Compiled (mypyc) or source modules for the SIP hot path: decided once, before any of them
# is imported (see softswitch/_native.py).
from softswitch._native import install as _install_native

_install_native()
