//! The learned policy: one Candle network that plays both SSR roles by scoring the candidate
//! edits the engine lists ([`features`]), its loss and optimizer ([`model`]), and the agent
//! that plays solver episodes with it through the environment's tools ([`agent`]).
//!
//! Rollouts always run on the CPU with a frozen copy of the weights; training runs on the
//! device [`device`] picks (the CPU, or CUDA with the `cuda` feature).

pub mod agent;
pub mod features;
pub mod model;

pub use agent::{sample, solver_factory, DecisionSink, PolicySolver};
pub use features::{Choice, Role};
pub use model::{Decision, PolicyNet};

/// Where training runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// The CPU (always available).
    Cpu,
    /// The first CUDA GPU (needs the `cuda` feature and a GPU).
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            _ => Err(format!("unknown device {s:?}: use cpu or cuda")),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        })
    }
}

/// Errors picking a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// This binary was built without CUDA.
    #[error("the CUDA device needs a build with CUDA")]
    NotBuilt,
    /// CUDA is built in but no GPU could be opened.
    #[error("no CUDA GPU could be opened")]
    NoGpu(#[source] candle_core::Error),
}

/// The one place that turns a [`DeviceChoice`] into a Candle device.
pub fn device(choice: DeviceChoice) -> Result<candle_core::Device, DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok(candle_core::Device::Cpu),
        DeviceChoice::Cuda if !cfg!(feature = "cuda") => Err(DeviceError::NotBuilt),
        DeviceChoice::Cuda => candle_core::Device::new_cuda(0).map_err(DeviceError::NoGpu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_works_and_cuda_says_what_to_do() {
        assert!(device(DeviceChoice::Cpu).unwrap().is_cpu());
        if !cfg!(feature = "cuda") {
            let e = device(DeviceChoice::Cuda).unwrap_err();
            assert!(matches!(e, DeviceError::NotBuilt), "{e}");
        }
        assert_eq!("cuda".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda));
        assert!("tpu".parse::<DeviceChoice>().is_err());
    }
}
