use super::{Ctx, GraphResult};
use crate::errors::GraphError;
pub fn media_comments(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn comment_node(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn replies(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
