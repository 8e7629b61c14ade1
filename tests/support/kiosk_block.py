"""Python source that, run first in a fresh interpreter, makes it a kiosk install: importing torch, onnx,
onnxscript, torchvision or jinja2 raises ImportError (tests/test_no_torch.py, tests/test_public_api.py)."""
import textwrap

KIOSK_BLOCK = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "onnx", "onnxscript", "torchvision", "jinja2")
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked on a kiosk: " + name)
    sys.meta_path.insert(0, Block())
""")
