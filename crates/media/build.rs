//! Compresses the watermark's font (DEFLATE, at miniz_oxide's highest level)
//! into the build's output: `library-worker` carries 0.35 MiB of it instead
//! of the 0.68 MiB file, and inflates it once, on its first watermark.

fn main() {
    const FONT: &str = "assets/DejaVuSans-Bold.ttf";
    println!("cargo::rerun-if-changed={FONT}");
    let font = std::fs::read(FONT).expect("the watermark font is vendored in assets/");
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("watermark-font.deflate");
    std::fs::write(out, miniz_oxide::deflate::compress_to_vec(&font, 10)).expect("OUT_DIR is writable");
}
