#![no_std]
#![no_main]
// Placeholder until the program is written.
ucspi_ipc::program!(main);
fn main(_: ucspi_ipc::runtime::Start) -> ! {
    ucspi_ipc::log::set_name(b"ipcclient");
    ucspi_ipc::log::fatal(111, &[b"not implemented yet"])
}
