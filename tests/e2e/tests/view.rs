//! The processor's view of the swarm through its real Docker adapter, against a generated
//! Engine API ([`e2e::simulated`]) where a case is hard to stage on the test bed's swarm at
//! the right moment. Needs no test bed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::simulated::{Shape, Simulated, instance_id, node_id};
use swarm_aws::adapters::docker::DockerSwarm;
use swarm_aws::ids::InstanceId;
use swarm_aws::ports::SwarmNodes;

#[tokio::test]
async fn a_drained_node_removed_between_the_node_list_and_its_tasks_is_dropped_and_the_rest_read()
-> Result<()> {
    let shape = Shape {
        nodes: 10,
        tasks_per_node: 4,
        services: 5,
        draining: 3,
        history: 1,
    };
    let sim = Arc::new(Simulated::generate(shape));
    let addr = sim.clone().spawn().await?;
    // Node 9, drained, went with its instance (another drain finished): the node list still
    // names it, a task list filtered on it is answered 404.
    sim.gone.lock().expect("gone").push(node_id(9));
    let swarm = DockerSwarm::new(vec![format!("tcp://{addr}")], None).fresh_for(Duration::ZERO);
    let ours: InstanceId = instance_id(8).as_str().try_into()?;
    let requests = sim.requests.load(Ordering::SeqCst);
    let view = swarm.observe(&ours).await?;
    // The other drained node's drain goes on, on the tasks still stopping there.
    ensure!(view.node.is_some(), "node 8 is in the view");
    ensure!(
        view.tasks_on_node.len() == shape.tasks_per_node,
        "node 8's stopping tasks are read: {:?}",
        view.tasks_on_node
    );
    ensure!(!view.services.is_empty(), "and the services it served");
    // The one gone is gone from the view too.
    let gone: InstanceId = instance_id(9).as_str().try_into()?;
    ensure!(
        swarm.observe(&gone).await?.node.is_none(),
        "node 9 is not in the view"
    );
    ensure!(
        sim.requests.load(Ordering::SeqCst) > requests,
        "the simulated Engine API was asked"
    );
    Ok(())
}
