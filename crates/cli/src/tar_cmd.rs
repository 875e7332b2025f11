//! `ostree-container tar …`: the ostree-container tar format on the command line.

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TarCommand {}

pub fn run(cmd: TarCommand, _interrupt: &AtomicBool) -> Result<u8> {
    match cmd {}
}
