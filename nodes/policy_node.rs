//! policy_node: see [`equigate::nodes::policy`] (the node lives in the library so that `equigate graph`
//! can start it from the one `equigate` executable too).

fn main() {
    let result = equigate_ros::RosArgs::from_env()
        .map_err(anyhow::Error::from)
        .and_then(equigate::nodes::policy::run);
    if let Err(e) = result {
        eprintln!("policy_node: error: {e:#}");
        std::process::exit(1);
    }
}
