use serde_json::Value;

use super::{Ctx, FieldSel, GraphResult};
use crate::errors::GraphError;
use crate::state::{State, User};

pub fn media_edge(
    _ctx: &Ctx<'_>,
    _st: &State,
    _u: &User,
    f: &FieldSel,
) -> Result<Value, GraphError> {
    Err(GraphError::nonexisting_field(&f.name, "User"))
}
pub fn list_user_media(_ctx: &Ctx<'_>) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn list_stories(_ctx: &Ctx<'_>) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn node(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn children(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
