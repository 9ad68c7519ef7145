"""Reading the offer URI out of a PNG of its QR code.

Decoding needs the optional ``qr`` extra (``pip install 'thiqa[qr]'``): ``zxing-cpp`` (a
prebuilt wheel with a native decoder) and ``pypng`` (pure Python, so no Pillow). The server
never needs either; it only draws QR codes.
"""

from __future__ import annotations

from pathlib import Path

from service.wallet.store import WalletError

__all__ = ["decode_png", "looks_like_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 16_000_000


def looks_like_png(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(8) == PNG_SIGNATURE
    except OSError:
        return False


def _greyscale(data: bytes) -> tuple[int, int, bytes]:
    import png  # pypng

    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()
    except png.Error as exc:
        raise WalletError(f"not a readable PNG: {exc}") from exc
    if width * height > MAX_PIXELS:
        raise WalletError("the image is too large")
    planes = info["planes"]
    colour = planes >= 3
    top = (1 << info["bitdepth"]) - 1
    alpha = info["alpha"]
    out = bytearray()
    for row in rows:
        for x in range(width):
            px = row[x * planes : (x + 1) * planes]
            level = (px[0] * 299 + px[1] * 587 + px[2] * 114) // 1000 if colour else px[0]
            if alpha:  # composite on white: a transparent background is the light module
                a = px[-1]
                level = (level * a + top * (top - a)) // top
            out.append(level * 255 // top)
    return width, height, bytes(out)


def decode_png(path: Path) -> str:
    """The text of the (first) QR code in the PNG at ``path``."""
    try:
        import png  # noqa: F401
        import zxingcpp
    except ImportError as exc:
        raise WalletError("reading QR codes needs the qr extra: pip install 'thiqa[qr]'") from exc
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read {path}: {exc.strerror}") from exc
    width, height, pixels = _greyscale(data)
    image = memoryview(pixels).cast("B", shape=[height, width])
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    if not found:
        raise WalletError(f"no QR code found in {path}")
    return found[0].text
