use super::{Ctx, GraphResult};
use crate::errors::GraphError;
pub fn create_container(_ctx: &Ctx<'_>) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn publish(_ctx: &Ctx<'_>) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn limit(_ctx: &Ctx<'_>) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn container_node(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
